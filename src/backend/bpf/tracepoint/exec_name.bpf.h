/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* bpf-tracepoint, string mode: the name passed to exec, the one exe it can know
 * (the kernel-read mode and bpf-lsm/bpf-fentry announce the executable file itself,
 * fs_capture.bpf.h). */
#ifndef FSTRAIL_TRACEPOINT_EXEC_NAME_BPF_H
#define FSTRAIL_TRACEPOINT_EXEC_NAME_BPF_H

#include "backend/bpf/common/common.bpf.h"

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

#endif
