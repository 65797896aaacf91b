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

/*
 * Exec tracking. sched_process_exec's filename is a __data_loc string in kernel
 * memory, which cannot be read under lockdown, so the filename is read from user
 * memory at execve/execveat entry and sent only when the exec succeeded.
 */
#define FST_EXEC_NAME_MAX 256
struct fst_exec_record {
	/* struct fst_exec, then the filename */
	__u8 bytes[sizeof(struct fst_exec) + FST_EXEC_NAME_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* tid that called execve */
	__type(value, struct fst_exec_record);
} fst_pending_exec SEC(".maps");

struct fst_syscall_enter_args {
	__u64 common; /* struct trace_entry + padding */
	__s64 id;
	__u64 args[6];
};

static __always_inline int fst_remember_exec(__u64 filename_ptr, __s64 dirfd)
{
	static const struct fst_exec_record zero = {};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (fst_is_agent())
		return 0;
	if (bpf_map_update_elem(&fst_pending_exec, &tid, &zero, BPF_ANY))
		return 0;
	struct fst_exec_record *x = bpf_map_lookup_elem(&fst_pending_exec, &tid);
	if (!x)
		return 0;
	struct fst_exec *rec = (struct fst_exec *)x->bytes;
	char *filename = (char *)x->bytes + sizeof(struct fst_exec);
	long n = bpf_probe_read_user_str(filename, FST_EXEC_NAME_MAX, (const void *)filename_ptr);
	/* A relative name under a dirfd cannot be resolved later: leave it empty (user space reads /proc). */
	if (n <= 1 || (filename[0] != '/' && dirfd != FST_AT_FDCWD))
		n = 1;
	rec->filename_len = n - 1;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int fst_enter_execve(struct fst_syscall_enter_args *ctx)
{
	return fst_remember_exec(ctx->args[0], FST_AT_FDCWD);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int fst_enter_execveat(struct fst_syscall_enter_args *ctx)
{
	return fst_remember_exec(ctx->args[1], (__s64)(int)ctx->args[0]);
}

struct fst_sched_process_exec_args {
	__u64 common;
	__u32 filename_loc;
	__s32 pid;
	__s32 old_pid;
};

SEC("tracepoint/sched/sched_process_exec")
int fst_process_exec(struct fst_sched_process_exec_args *ctx)
{
	__u32 old_tid = ctx->old_pid;
	struct fst_exec_record *x = bpf_map_lookup_elem(&fst_pending_exec, &old_tid);

	if (!x)
		return 0;
	struct fst_exec *rec = (struct fst_exec *)x->bytes;
	__u32 len = rec->filename_len;
	if (len > FST_EXEC_NAME_MAX)
		len = FST_EXEC_NAME_MAX;
	__u32 size = sizeof(struct fst_exec) + len;
	fst_fill_header(&rec->hdr, FST_REC_EXEC, size);
	rec->pid = ctx->pid;
#ifdef FST_ADAPTIVE_WAKEUPS
	fst_output_adaptive_or_count(x, size, 0);
#else
	fst_output_or_count(x, size, 0);
#endif
	bpf_map_delete_elem(&fst_pending_exec, &old_tid);
	return 0;
}

#endif /* FSTRAIL_COMMON_BPF_H */
