// SPDX-License-Identifier: GPL-2.0
/*
 * bpf-lsm: BPF LSM hooks capture each operation before it runs (paths, old mode and
 * owner, the actor); the syscall's exit (tracepoint raw_syscalls/sys_exit) knows its
 * result and submits the record (success only unless --failed). Hooks deny only for
 * guard enforcement (enforce.bpf.h; nothing is denied unless fst_enforce is set).
 *
 * Modify: file_open with FMODE_WRITE under a root starts tracking the file,
 * file_permission(MAY_WRITE) marks it written, and its release submits one event:
 * file_release (6.8+, before the dentry is put) or file_free_security (older kernels;
 * user space switches the autoload).
 */
#include "backend/bpf/lsm/enforce.bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("lsm/path_mknod")
int BPF_PROG(fst_lsm_path_mknod, const struct path *dir, struct dentry *dentry, umode_t mode)
{
	if (fst_enforce_new_object(FST_OP_CREATE, dir, dentry, (mode & FST_S_IFMT) ? mode : mode | FST_S_IFREG))
		return -FST_EPERM;
	fst_capture_entry(FST_OP_CREATE, dentry, fst_real_mount(BPF_CORE_READ(dir, mnt)), dentry, 1);
	return 0;
}

SEC("lsm/path_mkdir")
int BPF_PROG(fst_lsm_path_mkdir, const struct path *dir, struct dentry *dentry, umode_t mode)
{
	if (fst_enforce_new_object(FST_OP_MKDIR, dir, dentry, (mode & 07777) | FST_S_IFDIR))
		return -FST_EPERM;
	fst_capture_entry(FST_OP_MKDIR, dentry, fst_real_mount(BPF_CORE_READ(dir, mnt)), dentry, 1);
	return 0;
}

SEC("lsm/path_unlink")
int BPF_PROG(fst_lsm_path_unlink, const struct path *dir, struct dentry *dentry)
{
	fst_capture_entry(FST_OP_DELETE, dentry, fst_real_mount(BPF_CORE_READ(dir, mnt)), dentry, 1);
	return 0;
}

SEC("lsm/path_rmdir")
int BPF_PROG(fst_lsm_path_rmdir, const struct path *dir, struct dentry *dentry)
{
	fst_capture_entry(FST_OP_RMDIR, dentry, fst_real_mount(BPF_CORE_READ(dir, mnt)), dentry, 1);
	return 0;
}

SEC("lsm/path_rename")
int BPF_PROG(fst_lsm_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry, unsigned int flags)
{
	if (fst_enforce_rename(old_dentry, fst_real_mount(BPF_CORE_READ(old_dir, mnt)), new_dentry,
			       fst_real_mount(BPF_CORE_READ(new_dir, mnt)), flags))
		return -FST_EPERM;
	fst_capture_rename(old_dentry, fst_real_mount(BPF_CORE_READ(old_dir, mnt)), new_dentry,
			   fst_real_mount(BPF_CORE_READ(new_dir, mnt)));
	return 0;
}

SEC("lsm/path_link")
int BPF_PROG(fst_lsm_path_link, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry)
{
	if (fst_enforce_link(old_dentry, new_dir, new_dentry))
		return -FST_EPERM;
	fst_capture_entry(FST_OP_LINK, new_dentry, fst_real_mount(BPF_CORE_READ(new_dir, mnt)),
			  old_dentry, 1);
	return 0;
}

SEC("lsm/path_symlink")
int BPF_PROG(fst_lsm_path_symlink, const struct path *dir, struct dentry *dentry)
{
	if (fst_enforce_new_object(FST_OP_SYMLINK, dir, dentry, FST_S_IFLNK | 0777))
		return -FST_EPERM;
	fst_capture_entry(FST_OP_SYMLINK, dentry, fst_real_mount(BPF_CORE_READ(dir, mnt)), dentry, 1);
	return 0;
}

/* truncate(2) and open(O_TRUNC); ftruncate(2) too before 6.2 */
SEC("lsm/path_truncate")
int BPF_PROG(fst_lsm_path_truncate, const struct path *path)
{
	fst_capture_path(FST_OP_TRUNCATE, path, 1);
	return 0;
}

/* ftruncate(2) since 6.2; not loaded where the hook does not exist */
SEC("lsm/file_truncate")
int BPF_PROG(fst_lsm_file_truncate, struct file *file)
{
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);

	fst_capture_entry(FST_OP_TRUNCATE, dentry, fst_real_mount(BPF_CORE_READ(file, f_path.mnt)),
			  dentry, 1);
	return 0;
}

SEC("lsm/path_chmod")
int BPF_PROG(fst_lsm_path_chmod, const struct path *path, umode_t mode)
{
	if (fst_enforce_chmod(path, mode))
		return -FST_EPERM;
	fst_capture_chmod(path, mode);
	return 0;
}

/* kuid_t and kgid_t arrive by value, one 64-bit slot each */
SEC("lsm/path_chown")
int fst_lsm_path_chown(unsigned long long *ctx)
{
	if (fst_enforce_chown((const struct path *)ctx[0], (__u32)ctx[1], (__u32)ctx[2]))
		return -FST_EPERM;
	fst_capture_chown((const struct path *)ctx[0], (__u32)ctx[1], (__u32)ctx[2]);
	return 0;
}

/* The first argument is a user_namespace (6.1) or a mnt_idmap (6.3+). The hooks only see
 * a dentry: the mount is taken from its superblock. */
SEC("lsm/inode_setxattr")
int BPF_PROG(fst_lsm_inode_setxattr, void *idmap, struct dentry *dentry)
{
	fst_capture_entry(FST_OP_XATTR, dentry, fst_mount_of_dentry(dentry), dentry, 1);
	return 0;
}

SEC("lsm/inode_removexattr")
int BPF_PROG(fst_lsm_inode_removexattr, void *idmap, struct dentry *dentry)
{
	fst_capture_entry(FST_OP_XATTR, dentry, fst_mount_of_dentry(dentry), dentry, 1);
	return 0;
}

SEC("lsm/file_open")
int BPF_PROG(fst_lsm_file_open, struct file *file)
{
	fst_track_open_for_write(file);
	fst_emit_open(file, 0);
	return 0;
}

SEC("lsm/file_permission")
int BPF_PROG(fst_lsm_file_permission, struct file *file, int mask)
{
	fst_track_write(file, mask);
	return 0;
}

SEC("lsm/file_release")
int BPF_PROG(fst_lsm_file_release, struct file *file)
{
	fst_track_release(file);
	return 0;
}

SEC("lsm/file_free_security")
int BPF_PROG(fst_lsm_file_free_security, struct file *file)
{
	fst_track_release(file);
	return 0;
}

/* x86-64 syscall numbers whose exit completes a captured operation. */
enum {
	NR_open = 2, NR_truncate = 76, NR_ftruncate = 77, NR_rename = 82, NR_mkdir = 83,
	NR_rmdir = 84, NR_creat = 85, NR_link = 86, NR_unlink = 87, NR_symlink = 88,
	NR_chmod = 90, NR_fchmod = 91, NR_chown = 92, NR_fchown = 93, NR_lchown = 94,
	NR_mknod = 133, NR_setxattr = 188, NR_lsetxattr = 189, NR_fsetxattr = 190,
	NR_removexattr = 197, NR_lremovexattr = 198, NR_fremovexattr = 199, NR_openat = 257,
	NR_mkdirat = 258, NR_mknodat = 259, NR_fchownat = 260, NR_unlinkat = 263,
	NR_renameat = 264, NR_linkat = 265, NR_symlinkat = 266, NR_fchmodat = 268,
	NR_renameat2 = 316, NR_openat2 = 437, NR_fchmodat2 = 452, NR_setxattrat = 463,
	NR_removexattrat = 466,
};

static __always_inline __u32 ops_of_syscall(long nr)
{
	switch (nr) {
	case NR_open: case NR_openat: case NR_openat2: case NR_creat:
		return 1u << FST_OP_CREATE | 1u << FST_OP_TRUNCATE;
	case NR_mknod: case NR_mknodat:
		return 1u << FST_OP_CREATE;
	case NR_mkdir: case NR_mkdirat:
		return 1u << FST_OP_MKDIR;
	case NR_unlink:
		return 1u << FST_OP_DELETE;
	case NR_unlinkat:
		return 1u << FST_OP_DELETE | 1u << FST_OP_RMDIR;
	case NR_rmdir:
		return 1u << FST_OP_RMDIR;
	case NR_rename: case NR_renameat: case NR_renameat2:
		return 1u << FST_OP_RENAME;
	case NR_link: case NR_linkat:
		return 1u << FST_OP_LINK;
	case NR_symlink: case NR_symlinkat:
		return 1u << FST_OP_SYMLINK;
	case NR_truncate: case NR_ftruncate:
		return 1u << FST_OP_TRUNCATE;
	case NR_chmod: case NR_fchmod: case NR_fchmodat: case NR_fchmodat2:
		return 1u << FST_OP_CHMOD;
	case NR_chown: case NR_fchown: case NR_lchown: case NR_fchownat:
		return 1u << FST_OP_CHOWN;
	case NR_setxattr: case NR_lsetxattr: case NR_fsetxattr: case NR_removexattr:
	case NR_lremovexattr: case NR_fremovexattr: case NR_setxattrat: case NR_removexattrat:
		return 1u << FST_OP_XATTR;
	}
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int fst_lsm_sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 ops = ops_of_syscall(ctx->id) & fst_ops_wanted;
	long ret = ctx->ret;

	if (!ops)
		return 0;
	for (__u32 op = FST_OP_CREATE; op <= FST_OP_XATTR; op++)
		if (ops & (1u << op))
			fst_finish(op, ret, 0);
	return 0;
}
