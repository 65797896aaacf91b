/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpf-tracepoint, kernel-read mode: a syscall between its entry and its exit. sys_enter
 * keeps the arguments (and fchmod/fchown's old attributes) in a tid-keyed map; the one
 * exit program (kread.bpf.c) does the work when the result is known.
 */
#ifndef FSTRAIL_KREAD_CALLS_BPF_H
#define FSTRAIL_KREAD_CALLS_BPF_H

#include "backend/bpf/common/fs_capture.bpf.h"
#include "backend/bpf/tracepoint/tracepoint.bpf.h"

enum fst_kr_kind {
	FST_KR_PATH = 1,      /* one path argument */
	FST_KR_TWO_PATHS = 2, /* rename, link: arg is the new path, old_arg the old one */
	FST_KR_FD = 3,        /* an fd */
	FST_KR_OPEN = 4,
	FST_KR_DUP = 5, /* dirfd: the fd duplicated */
};

/* A syscall between its entry and its exit. */
struct fst_kr_call {
	__u16 op;
	__u16 kind;
	__s32 dirfd; /* or the fd of FST_KR_FD */
	__s32 old_dirfd;
	__u32 open_flags;
	__u64 arg;
	__u64 old_arg;
	__u32 flags; /* event flags known at entry */
	__u32 new_mode, new_uid, new_gid;
	__u32 old_mode, old_uid, old_gid;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct fst_kr_call);
} fst_kr_calls SEC(".maps");

static __always_inline int fst_kr_keep(struct fst_kr_call *call)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (bpf_map_update_elem(&fst_kr_calls, &tid, call, BPF_ANY))
		fst_count_lost(call->op);
	return 0;
}

#endif
