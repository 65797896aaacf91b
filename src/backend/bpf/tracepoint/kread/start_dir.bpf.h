/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpf-tracepoint, kernel-read mode: where a path argument starts (the dirfd's file, the
 * cwd, or the process's root for an absolute one, so chroots and mount namespaces
 * resolve to real paths), and the argument sent with that directory's names
 * (FST_PATH_ARG_AT_DIR): user space joins them lexically.
 */
#ifndef FSTRAIL_KREAD_START_DIR_BPF_H
#define FSTRAIL_KREAD_START_DIR_BPF_H

#include "backend/bpf/tracepoint/kread/fd_table.bpf.h"
#include "backend/bpf/tracepoint/kread/scope.bpf.h"

/* The directory a path argument starts from. */
static __always_inline int fst_kr_start_dir(char first, __s32 dirfd, struct dentry **dir, struct mount **mnt)
{
	struct task_struct *task = fst_kr_task();
	struct vfsmount *vfsmnt;
	struct file *file;

	if (first == '/') {
		*dir = BPF_CORE_READ(task, fs, root.dentry);
		vfsmnt = BPF_CORE_READ(task, fs, root.mnt);
	} else if (dirfd == FST_AT_FDCWD) {
		*dir = BPF_CORE_READ(task, fs, pwd.dentry);
		vfsmnt = BPF_CORE_READ(task, fs, pwd.mnt);
	} else {
		file = fst_kr_file_of(dirfd);
		if (!file)
			return -1;
		*dir = BPF_CORE_READ(file, f_path.dentry);
		vfsmnt = BPF_CORE_READ(file, f_path.mnt);
	}
	if (!*dir || !vfsmnt)
		return -1;
	*mnt = fst_real_mount(vfsmnt);
	return 0;
}

/* A path argument read into a region: its scope and where it starts from. */
struct fst_kr_arg {
	__u32 len; /* bytes of the argument, NUL included */
	__u32 scope;
	struct dentry *dir;
	struct mount *mnt;
};

static __always_inline int fst_kr_read_arg(char *buf, __s32 dirfd, __u64 user_arg, struct fst_kr_arg *a)
{
	long n = bpf_probe_read_user_str(buf, FST_PATH_MAX, (const void *)user_arg);

	if (n <= 0)
		return -1;
	a->len = n;
	if (fst_kr_start_dir(buf[0], dirfd, &a->dir, &a->mnt))
		return -1;
	a->scope = fst_kr_arg_scope(buf, a->len - 1, a->dir, a->mnt);
	return 0;
}

/* After the argument at data[base]: the start directory's names. Returns the bytes of
 * the whole path (argument, NUL, names). */
static __always_inline __u32 fst_kr_add_dir_names(struct fst_kr_record *r, __u32 base, struct fst_kr_arg *a,
						  __u16 truncated_flag)
{
	__u32 matched, truncated, arg_len = a->len, names;

	if (base > FST_KR_REGION)
		base = FST_KR_REGION;
	if (arg_len > FST_PATH_MAX)
		arg_len = FST_PATH_MAX;
	barrier_var(base);
	barrier_var(arg_len);
	names = fst_walk(a->dir, a->mnt, r->data + base + arg_len, &matched, &truncated);
	if (names > FST_PATH_MAX + FST_NAME_MASK + 1)
		names = FST_PATH_MAX + FST_NAME_MASK + 1;
	if (truncated)
		r->ev.flags |= truncated_flag;
	return arg_len + names;
}

#endif
