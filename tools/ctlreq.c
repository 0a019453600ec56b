/* ctlreq.c - see ctlreq.h. */
#include <limits.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "corral_base.h"
#include "ipc/nngerr.h"
#include "common/rundir.h"
#include "tools/ctlreq.h"

int ctl_request(const char *url, uint64_t timeout_ms, nng_msg *req,
                nng_msg **reply)
{
	nng_socket s;
	int rc = nng_req0_open(&s);
	if (rc) {
		nng_msg_free(req);
		return err_from_nng(rc);
	}
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, (nng_duration)timeout_ms);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, (nng_duration)timeout_ms);
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, IPC_MAX_CTL_FRAME);
	rc = nng_dial(s, url, NULL, 0);
	if (!rc)
		rc = nng_sendmsg(s, req, 0);
	else
		nng_msg_free(req);
	if (!rc)
		rc = nng_recvmsg(s, reply, 0);
	nng_close(s);
	return err_from_nng(rc);
}

int ctl_status(const char *rundir, uint64_t timeout_ms, ipc_status *st)
{
	char url[PATH_MAX + 16];
	nng_msg *req = NULL, *reply = NULL;
	ipc_frame f;
	int rc = rundir_url(rundir, "control", url, sizeof url);
	if (!rc)
		rc = ipc_pack_status_req(&req);
	if (!rc)
		rc = ctl_request(url, timeout_ms, req, &reply);
	if (!rc)
		rc = ipc_decode_msg(reply, IPC_MAX_CTL_FRAME, &f);
	if (rc)
		return rc;
	if (f.type == IPC_ERROR) {
		ipc_error e;
		rc = ipc_unpack_error(&f, &e);
		ipc_frame_fini(&f);
		return rc ? rc : e.code;
	}
	rc = ipc_unpack_status(&f, st);
	ipc_frame_fini(&f);
	return rc;
}
