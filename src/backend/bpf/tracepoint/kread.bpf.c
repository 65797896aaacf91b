// SPDX-License-Identifier: GPL-2.0
/*
 * bpf-tracepoint, kernel-read mode: the same syscall tracepoints as the string mode
 * (tracepoint.bpf.c), but paths and actors are read from the kernel's own objects,
 * which tracepoint programs may do unless lockdown is `confidentiality` (the loader
 * falls back to the string mode when this object does not load).
 *
 *  - fd-based operations (open with O_CREAT or for writing, fchmod, fchown,
 *    ftruncate, fsetxattr, fremovexattr, the modify at close): the path of the struct
 *    file, by the dentry walk of fs_capture.bpf.h, filtered in the kernel by the
 *    (dev, ino) roots map;
 *  - path-based syscalls: the start directory (the dirfd's file, the cwd, or the
 *    process's root for an absolute argument) walked the same way, sent with the
 *    argument as written (FST_PATH_ARG_AT_DIR); user space joins them lexically.
 *    A start directory above the roots is filtered by prefix hashes (kread.bpf.h);
 *  - the actor from the task (credentials, login uid, parent), and the executable
 *    file itself (mm->exe_file), sent before a process's first event.
 *
 * Everything is done at sys_exit, when the result is known; sys_enter keeps the
 * arguments (and fchmod/fchown's old attributes) in a small tid-keyed map. This file
 * holds what each syscall does at entry and exit; each concern has its header:
 * kread/calls (entry to exit), kread/record (the event and its actor), kread/fd_table
 * (fds, and the modify at close), kread/scope (the root filter), kread/start_dir
 * (where a path argument starts), kread/process (exit and exec), and, shared with the
 * string mode, syscall_args (which argument is what) and dispatch.
 */
#define FST_ADAPTIVE_WAKEUPS 1
#define FST_OWN_EXE_LIFECYCLE 1 /* its exec and exit programs also flush writes */
#include "backend/bpf/common/fs_capture.bpf.h"
#include "backend/bpf/tracepoint/dispatch.bpf.h"
#include "backend/bpf/tracepoint/kread/calls.bpf.h"
#include "backend/bpf/tracepoint/kread/record.bpf.h"
#include "backend/bpf/tracepoint/kread/fd_table.bpf.h"
#include "backend/bpf/tracepoint/kread/scope.bpf.h"
#include "backend/bpf/tracepoint/kread/start_dir.bpf.h"
#include "backend/bpf/tracepoint/kread/process.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* include/linux/fs.h: set by the open that created the file (Linux 4.19+). */
#define FST_FMODE_CREATED 0x100000

/* ---- syscall entries: keep the arguments ---- */

static __always_inline int fst_sys_path(__u16 op, __s32 dirfd, __u64 path)
{
	struct fst_kr_call call = {.op = op, .kind = FST_KR_PATH, .dirfd = dirfd, .arg = path};

	if (!fst_wanted(op))
		return 0;
	if (op == FST_OP_MKDIR || op == FST_OP_RMDIR)
		call.flags = FST_EF_IS_DIR;
	return fst_kr_keep(&call);
}

/* link: the event names the new link only (its source is not part of the contract). */
static __always_inline int fst_sys_two(__u16 op, __s32 old_dirfd, __u64 old_path, __s32 new_dirfd, __u64 new_path)
{
	struct fst_kr_call call = {.op = op, .kind = FST_KR_TWO_PATHS, .dirfd = new_dirfd, .arg = new_path,
				   .old_dirfd = old_dirfd, .old_arg = old_path};

	if (op == FST_OP_LINK)
		return fst_sys_path(op, new_dirfd, new_path);
	if (!fst_wanted(op))
		return 0;
	return fst_kr_keep(&call);
}

static __always_inline int fst_sys_fd(__u16 op, __s32 fd)
{
	struct fst_kr_call call = {.op = op, .kind = FST_KR_FD, .dirfd = fd};

	if (!fst_wanted(op))
		return 0;
	return fst_kr_keep(&call);
}

static __always_inline int fst_sys_open(__s32 dirfd, __u64 path, __u32 flags)
{
	struct fst_kr_call call = {.op = FST_OP_OPEN, .kind = FST_KR_OPEN, .dirfd = dirfd, .arg = path,
				   .open_flags = flags};
	int wants_write = (flags & (FST_O_WRONLY | FST_O_RDWR)) && fst_wanted(FST_OP_MODIFY);
	int wants_create = (flags & FST_O_CREAT) && fst_wanted(FST_OP_CREATE);

	/* Read-only opens are most syscalls of a system: gone before anything is kept. */
	if (!wants_write && !wants_create && !fst_wanted(FST_OP_OPEN))
		return 0;
	if (flags & FST_O_CREAT)
		call.op = FST_OP_CREATE;
	return fst_kr_keep(&call);
}

static __always_inline int fst_sys_chmod(__s32 dirfd, __u64 path, __u32 mode, int by_fd)
{
	struct fst_kr_call call = {.op = FST_OP_CHMOD, .kind = by_fd ? FST_KR_FD : FST_KR_PATH, .dirfd = dirfd,
				   .arg = path, .new_mode = mode & 07777, .flags = FST_EF_HAS_NEW_MODE};
	struct file *file;

	if (!fst_wanted(FST_OP_CHMOD))
		return 0;
	if (by_fd && (file = fst_kr_file_of(dirfd))) {
		/* The old mode: the file before the call. */
		call.old_mode = BPF_CORE_READ(file, f_inode, i_mode);
		call.new_mode |= call.old_mode & FST_S_IFMT;
		call.flags |= FST_EF_HAS_OLD_MODE;
	}
	return fst_kr_keep(&call);
}

static __always_inline int fst_sys_chown(__s32 dirfd, __u64 path, __u32 uid, __u32 gid, int by_fd)
{
	struct fst_kr_call call = {.op = FST_OP_CHOWN, .kind = by_fd ? FST_KR_FD : FST_KR_PATH, .dirfd = dirfd,
				   .arg = path};
	struct file *file;

	if (!fst_wanted(FST_OP_CHOWN))
		return 0;
	/* -1 keeps the current owner or group: not a new value. */
	if (uid != (__u32)-1) {
		call.new_uid = uid;
		call.flags |= FST_EF_HAS_NEW_UID;
	}
	if (gid != (__u32)-1) {
		call.new_gid = gid;
		call.flags |= FST_EF_HAS_NEW_GID;
	}
	if (by_fd && (file = fst_kr_file_of(dirfd))) {
		call.old_uid = BPF_CORE_READ(file, f_inode, i_uid.val);
		call.old_gid = BPF_CORE_READ(file, f_inode, i_gid.val);
		call.flags |= FST_EF_HAS_OLD_OWNER;
	}
	return fst_kr_keep(&call);
}

/* ---- syscall exits: where the work is done ---- */

static __always_inline void fst_kr_finish_path(struct fst_kr_call *call, long ret)
{
	struct fst_kr_record *r;
	struct fst_kr_arg a = {};

	r = fst_kr_begin(call->op);
	if (!r)
		return;
	if (fst_kr_read_arg(r->data, call->dirfd, call->arg, &a) || a.scope == FST_KR_OUTSIDE)
		return;
	r->ev.flags |= call->flags;
	r->ev.new_mode = call->new_mode;
	r->ev.new_uid = call->new_uid;
	r->ev.new_gid = call->new_gid;
	r->ev.path_enc = FST_PATH_ARG_AT_DIR;
	r->ev.path_len = fst_kr_add_dir_names(r, 0, &a, FST_EF_PATH_TRUNCATED);
	fst_kr_submit(r, ret);
}

static __always_inline void fst_kr_finish_two(struct fst_kr_call *call, long ret)
{
	struct fst_kr_record *r;
	struct fst_kr_arg a = {}, old = {};
	__u64 base, old_len;

	r = fst_kr_begin(call->op);
	if (!r)
		return;
	if (fst_kr_read_arg(r->data, call->dirfd, call->arg, &a) ||
	    fst_kr_read_arg(r->data + FST_KR_REGION, call->old_dirfd, call->old_arg, &old))
		return;
	if (a.scope == FST_KR_OUTSIDE && old.scope == FST_KR_OUTSIDE)
		return;
	r->ev.path_enc = FST_PATH_ARG_AT_DIR;
	base = fst_kr_add_dir_names(r, 0, &a, FST_EF_PATH_TRUNCATED);
	if (base > FST_KR_REGION)
		base = FST_KR_REGION;
	barrier_var(base); /* the verifier must see the clamped value, not an earlier copy */
	r->ev.path_len = base;
	/* The old argument moves down to follow the path (a forward copy: dst < src). */
	old_len = old.len;
	if (old_len > FST_PATH_MAX)
		old_len = FST_PATH_MAX;
	if (base < FST_KR_REGION)
		bpf_probe_read_kernel(r->data + base, old_len, r->data + FST_KR_REGION);
	r->ev.old_path_enc = FST_PATH_ARG_AT_DIR;
	r->ev.old_path_len = fst_kr_add_dir_names(r, base, &old, FST_EF_OLD_PATH_TRUNCATED);
	fst_kr_submit(r, ret);
}

static __always_inline void fst_kr_finish_fd(struct fst_kr_call *call, long ret)
{
	struct file *file = fst_kr_file_of(call->dirfd);
	struct fst_kr_record *r;

	if (!file || !fst_kr_file_under_root(file))
		return;
	r = fst_kr_begin(call->op);
	if (!r)
		return;
	fst_kr_file_path(r, file);
	r->ev.flags |= call->flags;
	r->ev.new_mode = call->new_mode;
	r->ev.new_uid = call->new_uid;
	r->ev.new_gid = call->new_gid;
	r->ev.old_mode = call->old_mode;
	r->ev.old_uid = call->old_uid;
	r->ev.old_gid = call->old_gid;
	fst_kr_submit(r, ret);
}

static __always_inline void fst_kr_finish_open(struct fst_kr_call *call, long ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32, flags = call->open_flags;
	struct fst_kr_record *r;
	struct file *file;

	if (ret < 0) {
		/* No file: named by the argument (a failed create or open). */
		call->op = (flags & FST_O_CREAT) && fst_wanted(FST_OP_CREATE) ? FST_OP_CREATE : FST_OP_OPEN;
		if (fst_wanted(call->op))
			fst_kr_finish_path(call, ret);
		return;
	}
	file = fst_kr_file_of(ret);
	if (!file || !fst_kr_file_under_root(file))
		return;
	r = fst_kr_begin(FST_OP_CREATE);
	if (!r)
		return;
	fst_kr_file_path(r, file);
	/* O_CREAT without O_EXCL also opens existing files: the kernel says which. */
	if ((BPF_CORE_READ(file, f_mode) & FST_FMODE_CREATED) && fst_wanted(FST_OP_CREATE))
		fst_kr_submit(r, 0);
	if (fst_wanted(FST_OP_OPEN)) {
		r->ev.op = FST_OP_OPEN;
		fst_kr_submit(r, 0);
	}
	if ((flags & (FST_O_WRONLY | FST_O_RDWR)) && fst_wanted(FST_OP_MODIFY))
		fst_kr_track_write(tgid, ret, file);
}

static __always_inline int fst_kr_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct fst_kr_call *found = bpf_map_lookup_elem(&fst_kr_calls, &tid);
	struct fst_kr_call call;

	if (!found)
		return 0;
	call = *found;
	bpf_map_delete_elem(&fst_kr_calls, &tid);
	if (ret < 0 && !fst_report_failed)
		return 0;
	switch (call.kind) {
	case FST_KR_PATH:
		fst_kr_finish_path(&call, ret);
		break;
	case FST_KR_TWO_PATHS:
		fst_kr_finish_two(&call, ret);
		break;
	case FST_KR_FD:
		fst_kr_finish_fd(&call, ret);
		break;
	case FST_KR_OPEN:
		fst_kr_finish_open(&call, ret);
		break;
	}
	return 0;
}

/* One program for every exit (the loader routes each syscall number of
 * kKernelReadExits to it): 34 copies would each be verified, seconds at start. */
SEC("tracepoint/syscalls/sys_exit_openat")
int kr_exit(struct fst_syscall_exit_args *ctx) { return fst_kr_exit(ctx->ret); }

/* dup, dup2, dup3, fcntl: routed by the loader too. */
SEC("tracepoint/syscalls/sys_exit_dup")
int kr_exit_dup(struct fst_syscall_exit_args *ctx) { return fst_kr_exit_dup(ctx->ret); }

#define FST_SYS_PREFIX kr_enter_
#include "backend/bpf/tracepoint/syscall_args.bpf.h"
