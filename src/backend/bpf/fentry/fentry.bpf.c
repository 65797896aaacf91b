// SPDX-License-Identifier: GPL-2.0
/*
 * bpf-fentry: for kernels with BTF but without the BPF LSM active. fentry on the
 * security_path_* functions (they see the mount, so full paths) captures each
 * operation before it runs; fexit on the VFS function that performs it knows the
 * result and submits the record (success only unless --failed).
 *
 * VFS signatures differ across kernels only in the type of their first argument
 * (user_namespace on 6.1, mnt_idmap since 6.3) and in struct renamedata, whose
 * fields are read with CO-RE; programs for functions a kernel lacks are not loaded.
 */
#include "backend/bpf/common/fs_capture.bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("fentry/security_path_mknod")
int BPF_PROG(fst_fentry_path_mknod, const struct path *dir, struct dentry *dentry)
{
	fst_capture_entry(FST_OP_CREATE, dentry, fst_real_mount(BPF_CORE_READ(dir, mnt)), dentry, 1);
	return 0;
}

SEC("fentry/security_path_mkdir")
int BPF_PROG(fst_fentry_path_mkdir, const struct path *dir, struct dentry *dentry)
{
	fst_capture_entry(FST_OP_MKDIR, dentry, fst_real_mount(BPF_CORE_READ(dir, mnt)), dentry, 1);
	return 0;
}

SEC("fentry/security_path_unlink")
int BPF_PROG(fst_fentry_path_unlink, const struct path *dir, struct dentry *dentry)
{
	fst_capture_entry(FST_OP_DELETE, dentry, fst_real_mount(BPF_CORE_READ(dir, mnt)), dentry, 1);
	return 0;
}

SEC("fentry/security_path_rmdir")
int BPF_PROG(fst_fentry_path_rmdir, const struct path *dir, struct dentry *dentry)
{
	fst_capture_entry(FST_OP_RMDIR, dentry, fst_real_mount(BPF_CORE_READ(dir, mnt)), dentry, 1);
	return 0;
}

SEC("fentry/security_path_rename")
int BPF_PROG(fst_fentry_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry)
{
	fst_capture_rename(old_dentry, fst_real_mount(BPF_CORE_READ(old_dir, mnt)), new_dentry,
			   fst_real_mount(BPF_CORE_READ(new_dir, mnt)));
	return 0;
}

SEC("fentry/security_path_link")
int BPF_PROG(fst_fentry_path_link, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry)
{
	fst_capture_entry(FST_OP_LINK, new_dentry, fst_real_mount(BPF_CORE_READ(new_dir, mnt)),
			  old_dentry, 1);
	return 0;
}

SEC("fentry/security_path_symlink")
int BPF_PROG(fst_fentry_path_symlink, const struct path *dir, struct dentry *dentry)
{
	fst_capture_entry(FST_OP_SYMLINK, dentry, fst_real_mount(BPF_CORE_READ(dir, mnt)), dentry, 1);
	return 0;
}

SEC("fentry/security_path_truncate")
int BPF_PROG(fst_fentry_path_truncate, const struct path *path)
{
	fst_capture_path(FST_OP_TRUNCATE, path, 1);
	return 0;
}

/* ftruncate(2) since 6.2 */
SEC("fentry/security_file_truncate")
int BPF_PROG(fst_fentry_file_truncate, struct file *file)
{
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);

	fst_capture_entry(FST_OP_TRUNCATE, dentry, fst_real_mount(BPF_CORE_READ(file, f_path.mnt)),
			  dentry, 1);
	return 0;
}

SEC("fentry/security_path_chmod")
int BPF_PROG(fst_fentry_path_chmod, const struct path *path, umode_t mode)
{
	fst_capture_chmod(path, mode);
	return 0;
}

/* kuid_t and kgid_t arrive by value, one 64-bit slot each */
SEC("fentry/security_path_chown")
int fst_fentry_path_chown(unsigned long long *ctx)
{
	fst_capture_chown((const struct path *)ctx[0], (__u32)ctx[1], (__u32)ctx[2]);
	return 0;
}

SEC("fentry/security_inode_setxattr")
int BPF_PROG(fst_fentry_inode_setxattr, void *idmap, struct dentry *dentry)
{
	fst_capture_entry(FST_OP_XATTR, dentry, fst_mount_of_dentry(dentry), dentry, 1);
	return 0;
}

SEC("fentry/security_inode_removexattr")
int BPF_PROG(fst_fentry_inode_removexattr, void *idmap, struct dentry *dentry)
{
	fst_capture_entry(FST_OP_XATTR, dentry, fst_mount_of_dentry(dentry), dentry, 1);
	return 0;
}

/* ---- results ---- */

SEC("fexit/vfs_create")
int BPF_PROG(fst_fexit_vfs_create, void *idmap, struct inode *dir, struct dentry *dentry, umode_t mode,
	     bool excl, int ret)
{
	fst_finish(FST_OP_CREATE, ret, dentry);
	return 0;
}

SEC("fexit/vfs_mknod")
int BPF_PROG(fst_fexit_vfs_mknod, void *idmap, struct inode *dir, struct dentry *dentry, umode_t mode,
	     dev_t dev, int ret)
{
	fst_finish(FST_OP_CREATE, ret, dentry);
	return 0;
}

/* open(O_CREAT) creates through i_op->create, not vfs_create: finished here. */
SEC("fexit/vfs_open")
int BPF_PROG(fst_fexit_vfs_open, const struct path *path, struct file *file, int ret)
{
	fst_finish(FST_OP_CREATE, ret, BPF_CORE_READ(path, dentry));
	if (ret == 0)
		fst_track_open_for_write(file);
	fst_emit_open(file, ret);
	return 0;
}

/* vfs_mkdir returns an int before 6.15 and a dentry (or an ERR_PTR) since; user space
 * reads which from the kernel's BTF. */
const volatile __u32 fst_vfs_mkdir_returns_dentry = 0;

SEC("fexit/vfs_mkdir")
int BPF_PROG(fst_fexit_vfs_mkdir, void *idmap, struct inode *dir, struct dentry *dentry, umode_t mode,
	     long ret)
{
	if (!fst_vfs_mkdir_returns_dentry) {
		fst_finish(FST_OP_MKDIR, (int)ret, dentry);
	} else if ((unsigned long)ret >= (unsigned long)-4095L) {
		fst_finish(FST_OP_MKDIR, ret, dentry);
	} else {
		fst_finish(FST_OP_MKDIR, 0, ret ? (struct dentry *)ret : dentry);
	}
	return 0;
}

SEC("fexit/vfs_unlink")
int BPF_PROG(fst_fexit_vfs_unlink, void *idmap, struct inode *dir, struct dentry *dentry,
	     struct inode **delegated, int ret)
{
	fst_finish(FST_OP_DELETE, ret, 0);
	return 0;
}

SEC("fexit/vfs_rmdir")
int BPF_PROG(fst_fexit_vfs_rmdir, void *idmap, struct inode *dir, struct dentry *dentry, int ret)
{
	fst_finish(FST_OP_RMDIR, ret, 0);
	return 0;
}

SEC("fexit/vfs_rename")
int BPF_PROG(fst_fexit_vfs_rename, struct renamedata *rd, int ret)
{
	fst_finish(FST_OP_RENAME, ret, 0);
	return 0;
}

SEC("fexit/vfs_link")
int BPF_PROG(fst_fexit_vfs_link, struct dentry *old_dentry, void *idmap, struct inode *dir,
	     struct dentry *new_dentry, struct inode **delegated, int ret)
{
	fst_finish(FST_OP_LINK, ret, new_dentry);
	return 0;
}

SEC("fexit/vfs_symlink")
int BPF_PROG(fst_fexit_vfs_symlink, void *idmap, struct inode *dir, struct dentry *dentry,
	     const char *oldname, int ret)
{
	fst_finish(FST_OP_SYMLINK, ret, dentry);
	return 0;
}

/* chmod, chown and truncate all end in notify_change() */
SEC("fexit/notify_change")
int BPF_PROG(fst_fexit_notify_change, void *idmap, struct dentry *dentry, struct iattr *attr,
	     struct inode **delegated, int ret)
{
	unsigned int valid = BPF_CORE_READ(attr, ia_valid);

	if (valid & FST_ATTR_MODE)
		fst_finish(FST_OP_CHMOD, ret, 0);
	if (valid & (FST_ATTR_UID | FST_ATTR_GID))
		fst_finish(FST_OP_CHOWN, ret, 0);
	if (valid & FST_ATTR_SIZE)
		fst_finish(FST_OP_TRUNCATE, ret, 0);
	return 0;
}

/* Not __vfs_setxattr_locked: its 7 arguments are more than 6.1's trampolines take. */
SEC("fexit/vfs_setxattr")
int BPF_PROG(fst_fexit_vfs_setxattr, void *idmap, struct dentry *dentry, const char *name,
	     const void *value, size_t size, int flags, int ret)
{
	fst_finish(FST_OP_XATTR, ret, 0);
	return 0;
}

SEC("fexit/vfs_removexattr")
int BPF_PROG(fst_fexit_vfs_removexattr, void *idmap, struct dentry *dentry, const char *name,
	     int ret)
{
	fst_finish(FST_OP_XATTR, ret, 0);
	return 0;
}

/* ---- modify ---- */

SEC("fentry/security_file_permission")
int BPF_PROG(fst_fentry_file_permission, struct file *file, int mask)
{
	fst_track_write(file, mask);
	return 0;
}

/* The last reference is gone; the path is still intact here. */
SEC("fentry/__fput")
int BPF_PROG(fst_fentry_fput, struct file *file)
{
	fst_track_release(file);
	return 0;
}
