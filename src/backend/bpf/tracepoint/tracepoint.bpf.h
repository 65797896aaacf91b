/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Settings and map layouts the bpf-tracepoint backend shares with its loader. */
#ifndef FSTRAIL_TRACEPOINT_BPF_H
#define FSTRAIL_TRACEPOINT_BPF_H

#define FST_TP_MAX_ROOTS 16
/* Longest watched root the kernel compares; longer roots leave absolute paths to user space. */
#define FST_TP_ROOT_MAX 256

struct fst_tp_root {
	__u32 len; /* bytes of path; 0 for "/" (matches every absolute path) */
	char path[FST_TP_ROOT_MAX];
};

/* Syscall argument flags both modes read (uapi values: vmlinux.h has no macros). */
#define FST_O_WRONLY 01
#define FST_O_RDWR 02
#define FST_O_CREAT 0100
#define FST_O_TRUNC 01000
#define FST_O_DIRECTORY 0200000
#define FST_O_PATH 010000000
#define FST_AT_REMOVEDIR 0x200
#define FST_F_DUPFD 0
#define FST_F_DUPFD_CLOEXEC 1030

/* Syscall numbers below this are dispatched (x86-64 numbers end near 470). */
#define FST_TP_MAX_SYSCALL_NR 512

/* (thread group, fd) of a file opened for writing under a watched tree. */
struct fst_tp_fd_key {
	__u32 tgid;
	__s32 fd;
};

/* Where a path lies relative to the watched trees. */
enum fst_tp_scope {
	FST_SCOPE_OUTSIDE = 0,	 /* disjoint: neither in a tree nor above one */
	FST_SCOPE_INSIDE = 1,	 /* a watched root or below */
	FST_SCOPE_UNDECIDED = 2, /* the kernel cannot tell: user space decides */
	FST_SCOPE_ANCESTOR = 3,	 /* above a watched root: itself outside, some children inside */
};

/* Where a process's working directory lies, as user space (or the kernel, for a
 * chdir it could place) saw it when the process's chdir counter was `epoch`. */
struct fst_tp_cwd_state {
	__u64 epoch;
	__u32 scope; /* enum fst_tp_scope */
	__u32 _pad;
};

#endif
