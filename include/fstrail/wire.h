/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * fstrail wire format: the one record layout shared by every BPF program and
 * the C++ decoder (src/decode). Plain fixed-width C, no pointers, no bool,
 * explicit padding. Every record starts with struct fst_header.
 *
 * Compatibility rules: record types, ops, flags and path encodings are
 * append-only; new fields go at the end of a struct and bump FST_WIRE_VERSION.
 */
#ifndef FSTRAIL_WIRE_H
#define FSTRAIL_WIRE_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define FST_WIRE_VERSION 1

#define FST_COMM_LEN 16
/* Largest path a record carries (PATH_MAX). */
#define FST_PATH_MAX 4096

/* Record types (fst_header.type). */
enum fst_record_type {
	FST_REC_EVENT = 1, /* struct fst_event */
	FST_REC_EXEC = 2,  /* struct fst_exec: a process image changed */
	FST_REC_DIRFD = 3, /* struct fst_dirfd: a process opened a directory as an fd */
	FST_REC_EXE = 4,   /* struct fst_exe: the executable file of a process, from the kernel */
};

/* File operations (fst_event.op). Values are part of the wire format. */
enum fst_op {
	FST_OP_CREATE = 1,
	FST_OP_MKDIR = 2,
	FST_OP_DELETE = 3,
	FST_OP_RMDIR = 4,
	FST_OP_RENAME = 5,
	FST_OP_MODIFY = 6,
	FST_OP_CHMOD = 7,
	FST_OP_CHOWN = 8,
	FST_OP_TRUNCATE = 9,
	FST_OP_LINK = 10,
	FST_OP_SYMLINK = 11,
	FST_OP_XATTR = 12,
	FST_OP_OPEN = 13,
	FST_OP_COUNT /* one past the last op: size of per-op counter arrays */
};

/* fst_event.flags */
enum fst_event_flag {
	FST_EF_IS_DIR = 1 << 0,
	FST_EF_HAS_INODE = 1 << 1,     /* dev, ino are valid */
	FST_EF_HAS_OLD_MODE = 1 << 2,  /* old_mode is valid */
	FST_EF_HAS_NEW_MODE = 1 << 3,  /* new_mode is valid */
	FST_EF_HAS_OLD_OWNER = 1 << 4, /* old_uid, old_gid are valid */
	FST_EF_HAS_NEW_UID = 1 << 5,   /* new_uid is valid (chown to -1 keeps it) */
	FST_EF_HAS_NEW_GID = 1 << 6,   /* new_gid is valid */
	FST_EF_PATH_TRUNCATED = 1 << 7,
	FST_EF_OLD_PATH_TRUNCATED = 1 << 8,
	/* denied by fstrail itself (guard enforce, bpf-lsm): error is -EPERM; new_uid,
	 * new_gid, new_mode (when set) are the state the operation would have made */
	FST_EF_DENIED = 1 << 9,
};

/* fst_actor.valid: which actor fields the probe could capture. */
enum fst_actor_field {
	FST_AF_PPID = 1 << 0,
	FST_AF_LOGINUID = 1 << 1,
	FST_AF_SESSIONID = 1 << 2,
	FST_AF_CGROUP = 1 << 3,
	/* euid and egid are unknown: the program type cannot read the task's
	 * credentials (syscall tracepoints under lockdown give real ids only).
	 * A flag for "unknown" rather than for "valid" keeps older producers,
	 * which always filled them, meaning what they meant. */
	FST_AF_NO_EFFECTIVE_IDS = 1 << 4,
};

/* How a path's bytes in fst_event.data are to be read. */
enum fst_path_encoding {
	FST_PATH_NONE = 0,
	/* An absolute path (bpf_d_path). */
	FST_PATH_ABSOLUTE = 1,
	/* Names separated by NUL, leaf first, up to the root of the mount
	 * namespace (bounded dentry walk). An empty sequence is "/". */
	FST_PATH_REVERSED_COMPONENTS = 2,
	/* The path as the process passed it to the syscall, relative to
	 * dirfd (AT_FDCWD = -100 for the working directory) when not
	 * absolute; resolved in user space. */
	FST_PATH_AS_PASSED = 3,
	/* The path as the process passed it, NUL, then the directory it starts from
	 * (the dirfd's file, the cwd, or the process's root for an absolute path) as
	 * FST_PATH_REVERSED_COMPONENTS: joined and normalised lexically in user space. */
	FST_PATH_ARG_AT_DIR = 4,
};

struct fst_header {
	__u16 type;    /* enum fst_record_type */
	__u16 version; /* FST_WIRE_VERSION */
	__u32 size;    /* bytes in the record, header included */
	__u64 ktime_ns; /* CLOCK_BOOTTIME (bpf_ktime_get_boot_ns) */
};

struct fst_actor {
	__u32 pid; /* thread-group id */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 egid;
	__u32 loginuid;
	__u32 sessionid;
	__u32 valid; /* enum fst_actor_field bits */
	__u64 cgroup_id;
	char comm[FST_COMM_LEN];
};

struct fst_event {
	struct fst_header hdr;
	__u16 op;    /* enum fst_op */
	__u16 flags; /* enum fst_event_flag bits */
	__s32 error; /* 0, or the negative errno of a failed operation */
	struct fst_actor actor;
	__u64 dev; /* st_dev encoding (new_encode_dev) */
	__u64 ino;
	__u32 old_mode;
	__u32 new_mode;
	__u32 old_uid;
	__u32 old_gid;
	__u32 new_uid;
	__u32 new_gid;
	__s32 dirfd;     /* FST_PATH_AS_PASSED: the dirfd of path */
	__s32 old_dirfd; /* FST_PATH_AS_PASSED: the dirfd of old_path */
	__u8 path_enc;     /* enum fst_path_encoding */
	__u8 old_path_enc; /* enum fst_path_encoding */
	__u16 path_len;    /* bytes of path at data[0] */
	__u16 old_path_len; /* bytes of old_path at data[path_len] */
	__u16 _pad;
	char data[]; /* path, then old_path; no NUL terminators needed */
};

/* A process image changed (exec); lets user space keep exe without a /proc race. */
struct fst_exec {
	struct fst_header hdr;
	__u32 pid;
	__u32 _pad;
	__u16 filename_len;
	__u16 _pad2[3];
	char filename[]; /* as passed to execve, resolved against the caller's cwd */
};

/*
 * A change to the directories a process names paths against, in syscall order, so
 * user space can resolve later relative paths even after the process has exited
 * (backends that see paths only as passed: syscall tracepoints). `path` is as
 * passed, relative to `dirfd` when not absolute (empty: dirfd itself).
 *   fd >= 0                 fd now names that directory (open, dup)
 *   fd == -100 (AT_FDCWD)   the working directory became it (chdir, fchdir)
 *   fd == FST_DIRFD_EXITED  the process exited: forget its directories
 *   fd == FST_DIRFD_FORKED  the process was forked by the process whose pid is in
 *                           `dirfd`, and starts in its working directory
 */
#define FST_DIRFD_EXITED (-1)
#define FST_DIRFD_FORKED (-2)
struct fst_dirfd {
	struct fst_header hdr;
	__u32 pid;
	__s32 fd;
	__s32 dirfd;
	__u16 path_len;
	__u16 _pad;
	char path[];
};

/* The executable file of process `pid` (mm->exe_file), sent before the first event of a
 * process that was not reported since load or since its last exec. */
struct fst_exe {
	struct fst_header hdr;
	__u32 pid;
	__u8 path_enc; /* enum fst_path_encoding: FST_PATH_REVERSED_COMPONENTS */
	__u8 truncated;
	__u16 path_len;
	char path[];
};

#ifdef __cplusplus
#define FST_STATIC_ASSERT static_assert
#else
#define FST_STATIC_ASSERT _Static_assert
#endif
/* The layout has no implicit padding; these catch an accidental change. */
FST_STATIC_ASSERT(sizeof(struct fst_header) == 16, "fst_header layout");
FST_STATIC_ASSERT(sizeof(struct fst_actor) == 64, "fst_actor layout");
FST_STATIC_ASSERT(sizeof(struct fst_event) == 144, "fst_event layout");
FST_STATIC_ASSERT(sizeof(struct fst_exec) == 32, "fst_exec layout");
FST_STATIC_ASSERT(sizeof(struct fst_dirfd) == 32, "fst_dirfd layout");
FST_STATIC_ASSERT(sizeof(struct fst_exe) == 24, "fst_exe layout");

#endif /* FSTRAIL_WIRE_H */
