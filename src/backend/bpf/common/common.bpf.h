/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What every fstrail BPF object shares: the ring buffer, the per-op loss
 * counters, the agent's own tgid (excluded), how a record's header and actor
 * are filled, and the exec tracking that keeps `exe` without a /proc race.
 * Include it once per .bpf.c, before the backend's own programs.
 */
#ifndef FSTRAIL_COMMON_BPF_H
#define FSTRAIL_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "fstrail/wire.h"

#define FST_AT_FDCWD -100

/* Set by user space before load: the agent's own thread-group id, never reported. */
const volatile __u32 fst_agent_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* Records lost, by op (0: exec records): slots [0, FST_OP_COUNT) because the ring
 * buffer was full, [FST_OP_COUNT, 2 * FST_OP_COUNT) because a map that tracks an
 * operation between its hooks was full (ring_consumer.cc reads both bands). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * FST_OP_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} lost_by_op SEC(".maps");

static __always_inline void fst_count_lost_slot(__u32 slot)
{
	__u64 *lost = bpf_map_lookup_elem(&lost_by_op, &slot);
	if (lost)
		*lost += 1;
}

static __always_inline void fst_count_lost(__u32 op)
{
	fst_count_lost_slot(op);
}

static __always_inline void fst_count_map_full(__u32 op)
{
	fst_count_lost_slot(FST_OP_COUNT + op);
}

static __always_inline int fst_is_agent(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == fst_agent_tgid;
}

static __always_inline void fst_fill_header(struct fst_header *hdr, __u16 type, __u32 size)
{
	hdr->type = type;
	hdr->version = FST_WIRE_VERSION;
	hdr->size = size;
	hdr->ktime_ns = bpf_ktime_get_boot_ns();
}

/*
 * The actor as every program type can read it: pid, tid, real uid/gid, comm,
 * cgroup id. Backends that can read the task's credentials (LSM, fentry) fill
 * euid/egid/ppid/loginuid/sessionid afterwards, clear FST_AF_NO_EFFECTIVE_IDS
 * and set the matching valid bits.
 */
static __always_inline void fst_fill_actor(struct fst_actor *actor)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();

	actor->pid = pid_tgid >> 32;
	actor->tid = (__u32)pid_tgid;
	actor->uid = (__u32)uid_gid;
	actor->gid = uid_gid >> 32;
	actor->cgroup_id = bpf_get_current_cgroup_id();
	actor->valid = FST_AF_CGROUP | FST_AF_NO_EFFECTIVE_IDS;
	bpf_get_current_comm(actor->comm, sizeof(actor->comm));
}

/* Reserves a fixed-size record, or counts it lost under `op`. */
#define fst_reserve_or_count(size, op)                                   \
	({                                                               \
		void *rec__ = bpf_ringbuf_reserve(&events, (size), 0);   \
		if (!rec__)                                              \
			fst_count_lost(op);                              \
		rec__;                                                   \
	})

/* Copies a variable-size record (built in a map value) to the ring buffer, or counts it lost. */
static __always_inline void fst_output_or_count(void *record, __u64 size, __u32 op)
{
	if (bpf_ringbuf_output(&events, record, size, 0) < 0)
		fst_count_lost(op);
}

/*
 * Adaptive wakeups (bpf-tracepoint only; lsm and fentry never set the flag and do not
 * call this). While user space drains the ring in a polling loop it sets
 * fst_consumer_polling, and records are added without a wakeup (each wakeup is an
 * irq_work in the writer's context, paid by the traced process). Otherwise the
 * default: wake the consumer when it has caught up.
 *
 * No wakeup is missed when the consumer goes back to sleep: it clears the flag, then
 * (after a full barrier) drains once more and blocks; epoll reports data whenever
 * producer_pos != consumer_pos. The writer reserves first (producer_pos moves) and
 * reads the flag after a full barrier, so a writer that still saw the flag set has a
 * reservation the consumer's last drain or its epoll check sees.
 * Compiled only where FST_ADAPTIVE_WAKEUPS is defined: the other objects stay as they are.
 */
#ifdef FST_ADAPTIVE_WAKEUPS
volatile __u32 fst_consumer_polling = 0;
__u64 fst_wakeup_fence = 0; /* only ever added to, for the barrier */

static __always_inline __u64 fst_wakeup_flags(void)
{
	/* A locked add: a full barrier on x86-64 (the reservation's store, then this load). */
	__sync_fetch_and_add(&fst_wakeup_fence, 1);
	return fst_consumer_polling ? BPF_RB_NO_WAKEUP : 0;
}

/* fst_output_or_count with adaptive wakeups. */
static __always_inline void fst_output_adaptive_or_count(void *record, __u32 size, __u32 op)
{
	struct bpf_dynptr ptr;

	if (bpf_ringbuf_reserve_dynptr(&events, size, 0, &ptr) < 0) {
		bpf_ringbuf_discard_dynptr(&ptr, BPF_RB_NO_WAKEUP);
		fst_count_lost(op);
		return;
	}
	if (bpf_dynptr_write(&ptr, 0, record, size, 0) < 0) {
		bpf_ringbuf_discard_dynptr(&ptr, 0);
		fst_count_lost(op);
		return;
	}
	bpf_ringbuf_submit_dynptr(&ptr, fst_wakeup_flags());
}
#endif /* FST_ADAPTIVE_WAKEUPS */

/* A sys_enter_* (or raw_syscalls/sys_enter) tracepoint record. */
struct fst_syscall_enter_args {
	__u64 common; /* struct trace_entry + padding */
	__s64 id;
	__u64 args[6];
};

#endif /* FSTRAIL_COMMON_BPF_H */
