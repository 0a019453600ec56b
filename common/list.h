/*
 * list.h - the one intrusive doubly linked list of corral (the shape of
 * libuv's queue.h and the kernel's list_head): a node lives inside the
 * element, a list is a circular sentinel, and every operation is O(1)
 * without allocating.  Counting is the owner's business.
 *
 * Not thread-safe: each list belongs to one thread or is guarded by its
 * owner's lock.
 */
#ifndef COMMON_LIST_H
#define COMMON_LIST_H

#include <stddef.h>

typedef struct list_node {
	struct list_node *next, *prev;
} list_node;

/* A list is a node that points at itself when empty. */
typedef list_node list_head;

#define LIST_INIT(name) { &(name), &(name) }

/* The element that holds node n (member is the node's field name). */
#define list_entry(n, type, member)                                           \
	((type *)(void *)((char *)(n) - offsetof(type, member)))

static inline void list_init(list_head *h)
{
	h->next = h->prev = h;
}

static inline int list_empty(const list_head *h)
{
	return h->next == h;
}

/* A node that is on no list (after list_remove, or list_node_init). */
static inline void list_node_init(list_node *n)
{
	n->next = n->prev = n;
}

static inline int list_linked(const list_node *n)
{
	return n->next != n;
}

static inline void list_insert_after(list_node *pos, list_node *n)
{
	n->prev = pos;
	n->next = pos->next;
	pos->next->prev = n;
	pos->next = n;
}

static inline void list_push_back(list_head *h, list_node *n)
{
	list_insert_after(h->prev, n);
}

static inline void list_push_front(list_head *h, list_node *n)
{
	list_insert_after(h, n);
}

static inline void list_remove(list_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_node_init(n);
}

/* First and last node, or NULL when empty. */
static inline list_node *list_first(const list_head *h)
{
	return list_empty(h) ? NULL : h->next;
}

static inline list_node *list_last(const list_head *h)
{
	return list_empty(h) ? NULL : h->prev;
}

/* Moves every node of src to the end of dst; src ends empty. */
static inline void list_splice_back(list_head *dst, list_head *src)
{
	if (list_empty(src))
		return;
	src->next->prev = dst->prev;
	dst->prev->next = src->next;
	src->prev->next = dst;
	dst->prev = src->prev;
	list_init(src);
}

/* Iterates over nodes; `tmp` allows removing `n` inside the body. */
#define list_foreach_safe(n, tmp, h)                                          \
	for ((n) = (h)->next, (tmp) = (n)->next; (n) != (h);                   \
	     (n) = (tmp), (tmp) = (n)->next)

#define list_foreach(n, h) for ((n) = (h)->next; (n) != (h); (n) = (n)->next)

#endif
