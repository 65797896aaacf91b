/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Dispatch, for both modes of bpf-tracepoint. Each syscall tracepoint attached on its
 * own costs a tracepoint unregistration with an RCU wait when it is detached (about
 * 70 ms each on a busy host: seconds for all of them at exit). So the sys_enter_X /
 * sys_exit_X programs are loaded but not attached; two raw_syscalls programs, whose
 * records have the same layout (id, args / ret), tail-call them by syscall number.
 * User space fills the arrays (fst_enter_by_nr, fst_exit_by_nr).
 */
#ifndef FSTRAIL_TRACEPOINT_DISPATCH_BPF_H
#define FSTRAIL_TRACEPOINT_DISPATCH_BPF_H

#include "backend/bpf/tracepoint/tracepoint.bpf.h"

struct fst_syscall_exit_args {
	__u64 common;
	__s64 id;
	__s64 ret;
};

#define FST_SYSCALL_TABLE(name)                                  \
	struct {                                                 \
		__uint(type, BPF_MAP_TYPE_PROG_ARRAY);           \
		__uint(max_entries, FST_TP_MAX_SYSCALL_NR);      \
		__type(key, __u32);                              \
		__type(value, __u32);                            \
	} name SEC(".maps")

FST_SYSCALL_TABLE(fst_enter_by_nr);
FST_SYSCALL_TABLE(fst_exit_by_nr);

static __always_inline int fst_dispatch(void *ctx, __s64 nr, void *table)
{
	if (nr >= 0 && nr < FST_TP_MAX_SYSCALL_NR)
		bpf_tail_call(ctx, table, (__u32)nr);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int dispatch_enter(struct fst_syscall_enter_args *ctx) { return fst_dispatch(ctx, ctx->id, &fst_enter_by_nr); }

SEC("tracepoint/raw_syscalls/sys_exit")
int dispatch_exit(struct fst_syscall_exit_args *ctx) { return fst_dispatch(ctx, ctx->id, &fst_exit_by_nr); }

#endif
