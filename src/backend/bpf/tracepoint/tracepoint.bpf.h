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

/* (thread group, fd) of a file opened for writing under a watched tree. */
struct fst_tp_fd_key {
	__u32 tgid;
	__s32 fd;
};

/* Whether a process's working directory is inside a watched tree, as user space
 * saw it when the process's chdir counter (fst_cwd_epoch) was `epoch`. */
struct fst_tp_cwd_state {
	__u64 epoch;
	__u32 inside; /* 1 inside a watched root, 0 outside */
	__u32 _pad;
};

#endif
