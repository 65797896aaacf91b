/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The syscalls both modes of bpf-tracepoint watch at sys_enter, and which of their
 * arguments is what: one table for the string mode (tracepoint.bpf.c) and the
 * kernel-read mode (kread.bpf.c). The including object names its programs with
 * FST_SYS_PREFIX and defines, before including this, what each kind of call does:
 *
 *   fst_sys_open(dirfd, path, flags)              open family
 *   fst_sys_path(op, dirfd, path)                 one path argument
 *   fst_sys_two(op, old_dirfd, old, new_dirfd, new)  rename, link
 *   fst_sys_fd(op, fd)                            an fd argument
 *   fst_sys_chmod(dirfd, path, mode, by_fd)       by_fd: path is unused, dirfd the fd
 *   fst_sys_chown(dirfd, path, uid, gid, by_fd)
 *   fst_sys_write(fd)                             the write family
 *   fst_sys_close(fd)
 *   fst_sys_dup(old_fd, new_fd)                   new_fd -1: the lowest free one
 */
#ifndef FSTRAIL_TRACEPOINT_SYSCALL_ARGS_BPF_H
#define FSTRAIL_TRACEPOINT_SYSCALL_ARGS_BPF_H

#ifndef FST_SYS_PREFIX
#error "define FST_SYS_PREFIX (the programs' name prefix) before including syscall_args.bpf.h"
#endif

#define FST_SYS_CAT_(a, b) a##b
#define FST_SYS_CAT(a, b) FST_SYS_CAT_(a, b)
#define FST_SYS_ENTER(name)                             \
	SEC("tracepoint/syscalls/sys_enter_" #name)     \
	int FST_SYS_CAT(FST_SYS_PREFIX, name)(struct fst_syscall_enter_args *ctx)

#define ARG(n) (ctx->args[n])
#define DIRFD(n) ((__s32)ctx->args[n])

FST_SYS_ENTER(open) { return fst_sys_open(FST_AT_FDCWD, ARG(0), ARG(1)); }
FST_SYS_ENTER(openat) { return fst_sys_open(DIRFD(0), ARG(1), ARG(2)); }
FST_SYS_ENTER(creat) { return fst_sys_open(FST_AT_FDCWD, ARG(0), FST_O_CREAT | FST_O_WRONLY | FST_O_TRUNC); }

FST_SYS_ENTER(openat2)
{
	__u64 how_flags = 0; /* struct open_how starts with __u64 flags */

	if (bpf_probe_read_user(&how_flags, sizeof(how_flags), (const void *)ARG(2)))
		return 0;
	return fst_sys_open(DIRFD(0), ARG(1), (__u32)how_flags);
}

FST_SYS_ENTER(mkdir) { return fst_sys_path(FST_OP_MKDIR, FST_AT_FDCWD, ARG(0)); }
FST_SYS_ENTER(mkdirat) { return fst_sys_path(FST_OP_MKDIR, DIRFD(0), ARG(1)); }
FST_SYS_ENTER(unlink) { return fst_sys_path(FST_OP_DELETE, FST_AT_FDCWD, ARG(0)); }

FST_SYS_ENTER(unlinkat)
{
	return fst_sys_path((ARG(2) & FST_AT_REMOVEDIR) ? FST_OP_RMDIR : FST_OP_DELETE, DIRFD(0), ARG(1));
}

FST_SYS_ENTER(rmdir) { return fst_sys_path(FST_OP_RMDIR, FST_AT_FDCWD, ARG(0)); }
FST_SYS_ENTER(truncate) { return fst_sys_path(FST_OP_TRUNCATE, FST_AT_FDCWD, ARG(0)); }
FST_SYS_ENTER(symlink) { return fst_sys_path(FST_OP_SYMLINK, FST_AT_FDCWD, ARG(1)); }
FST_SYS_ENTER(symlinkat) { return fst_sys_path(FST_OP_SYMLINK, DIRFD(1), ARG(2)); }
FST_SYS_ENTER(setxattr) { return fst_sys_path(FST_OP_XATTR, FST_AT_FDCWD, ARG(0)); }
FST_SYS_ENTER(lsetxattr) { return fst_sys_path(FST_OP_XATTR, FST_AT_FDCWD, ARG(0)); }
FST_SYS_ENTER(removexattr) { return fst_sys_path(FST_OP_XATTR, FST_AT_FDCWD, ARG(0)); }
FST_SYS_ENTER(lremovexattr) { return fst_sys_path(FST_OP_XATTR, FST_AT_FDCWD, ARG(0)); }
/* Linux 6.13+: setxattrat(dfd, path, at_flags, name, args, size) */
FST_SYS_ENTER(setxattrat) { return fst_sys_path(FST_OP_XATTR, DIRFD(0), ARG(1)); }
FST_SYS_ENTER(removexattrat) { return fst_sys_path(FST_OP_XATTR, DIRFD(0), ARG(1)); }

FST_SYS_ENTER(ftruncate) { return fst_sys_fd(FST_OP_TRUNCATE, DIRFD(0)); }
FST_SYS_ENTER(fsetxattr) { return fst_sys_fd(FST_OP_XATTR, DIRFD(0)); }
FST_SYS_ENTER(fremovexattr) { return fst_sys_fd(FST_OP_XATTR, DIRFD(0)); }

FST_SYS_ENTER(chmod) { return fst_sys_chmod(FST_AT_FDCWD, ARG(0), ARG(1), 0); }
FST_SYS_ENTER(fchmodat) { return fst_sys_chmod(DIRFD(0), ARG(1), ARG(2), 0); }
/* Linux 6.6+ */
FST_SYS_ENTER(fchmodat2) { return fst_sys_chmod(DIRFD(0), ARG(1), ARG(2), 0); }
FST_SYS_ENTER(fchmod) { return fst_sys_chmod(DIRFD(0), 0, ARG(1), 1); }

FST_SYS_ENTER(chown) { return fst_sys_chown(FST_AT_FDCWD, ARG(0), ARG(1), ARG(2), 0); }
FST_SYS_ENTER(lchown) { return fst_sys_chown(FST_AT_FDCWD, ARG(0), ARG(1), ARG(2), 0); }
FST_SYS_ENTER(fchownat) { return fst_sys_chown(DIRFD(0), ARG(1), ARG(2), ARG(3), 0); }
FST_SYS_ENTER(fchown) { return fst_sys_chown(DIRFD(0), 0, ARG(1), ARG(2), 1); }

FST_SYS_ENTER(rename) { return fst_sys_two(FST_OP_RENAME, FST_AT_FDCWD, ARG(0), FST_AT_FDCWD, ARG(1)); }
FST_SYS_ENTER(renameat) { return fst_sys_two(FST_OP_RENAME, DIRFD(0), ARG(1), DIRFD(2), ARG(3)); }
FST_SYS_ENTER(renameat2) { return fst_sys_two(FST_OP_RENAME, DIRFD(0), ARG(1), DIRFD(2), ARG(3)); }
FST_SYS_ENTER(link) { return fst_sys_two(FST_OP_LINK, FST_AT_FDCWD, ARG(0), FST_AT_FDCWD, ARG(1)); }
FST_SYS_ENTER(linkat) { return fst_sys_two(FST_OP_LINK, DIRFD(0), ARG(1), DIRFD(2), ARG(3)); }

FST_SYS_ENTER(write) { return fst_sys_write(DIRFD(0)); }
FST_SYS_ENTER(pwrite64) { return fst_sys_write(DIRFD(0)); }
FST_SYS_ENTER(writev) { return fst_sys_write(DIRFD(0)); }
FST_SYS_ENTER(pwritev) { return fst_sys_write(DIRFD(0)); }
FST_SYS_ENTER(pwritev2) { return fst_sys_write(DIRFD(0)); }
/* copy_file_range(fd_in, off_in, fd_out, ...), sendfile(out_fd, in_fd, ...) */
FST_SYS_ENTER(copy_file_range) { return fst_sys_write(DIRFD(2)); }
FST_SYS_ENTER(sendfile64) { return fst_sys_write(DIRFD(0)); }

/* At sys_enter: close releases the fd even when it then reports an error. */
FST_SYS_ENTER(close) { return fst_sys_close(DIRFD(0)); }

FST_SYS_ENTER(dup) { return fst_sys_dup(DIRFD(0), -1); }
FST_SYS_ENTER(dup2) { return fst_sys_dup(DIRFD(0), DIRFD(1)); }
FST_SYS_ENTER(dup3) { return fst_sys_dup(DIRFD(0), DIRFD(1)); }

FST_SYS_ENTER(fcntl)
{
	if (ARG(1) != FST_F_DUPFD && ARG(1) != FST_F_DUPFD_CLOEXEC)
		return 0;
	return fst_sys_dup(DIRFD(0), -1);
}

#endif
