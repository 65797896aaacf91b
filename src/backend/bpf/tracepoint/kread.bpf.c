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
 * arguments (and fchmod/fchown's old attributes) in a small tid-keyed map.
 */
#define FST_ADAPTIVE_WAKEUPS 1
#define FST_OWN_EXE_LIFECYCLE 1 /* its exec and exit programs also flush writes */
#include "backend/bpf/common/fs_capture.bpf.h"
#include "backend/bpf/tracepoint/kread.bpf.h"
#include "backend/bpf/tracepoint/dispatch.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* include/linux/fs.h: set by the open that created the file (Linux 4.19+). */
#define FST_FMODE_CREATED 0x100000

#define FST_KR_OUTSIDE 0
#define FST_KR_INSIDE 1
#define FST_KR_UNDECIDED 2

/* One path: the argument (< FST_PATH_MAX), then the start directory's names. */
#define FST_KR_REGION (2 * FST_PATH_MAX + FST_NAME_MASK + 1)
#define FST_KR_DATA (2 * FST_KR_REGION)
/* Files open for writing flushed at exit or exec (more are counted lost). */
#define FST_KR_FLUSH_MAX 8

struct fst_kr_record {
	struct fst_event ev;
	char data[FST_KR_DATA];
};

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

struct fst_kr_fd_key {
	__u32 tgid;
	__s32 fd;
};

/* An fd open for writing on a file under a root: modify at its close. */
struct fst_kr_write {
	__u64 file;
	__u32 written;
	__u32 _pad;
	struct fst_actor writer; /* the first writer */
};

struct fst_kr_flush {
	__u32 tgid;
	__u32 count;
	__u32 overflow;
	__s32 fds[FST_KR_FLUSH_MAX];
	struct fst_kr_write writes[FST_KR_FLUSH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct fst_kr_call);
} fst_kr_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, FST_KR_MAX_ANCESTORS);
	__type(key, struct fst_root_key);
	__type(value, __u8);
} fst_kr_ancestors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, FST_KR_MAX_PREFIXES);
	__type(key, __u64);
	__type(value, __u8);
} fst_kr_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fst_kr_record);
} fst_kr_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fst_kr_flush);
} fst_kr_flush_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct fst_kr_fd_key);
	__type(value, struct fst_kr_write);
} fst_kr_write_fds SEC(".maps");

/* Processes with entries in fst_kr_write_fds: only they are flushed at exit and exec. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} fst_kr_writers SEC(".maps");

static __always_inline struct task_struct *fst_kr_task(void)
{
	return (struct task_struct *)bpf_get_current_task();
}

static __always_inline struct file *fst_kr_file_of(__s32 fd)
{
	struct fdtable *fdt = BPF_CORE_READ(fst_kr_task(), files, fdt);
	struct file **fds;
	struct file *file = 0;

	if (fd < 0 || !fdt || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&file, sizeof(file), fds + fd);
	return file;
}

static __always_inline struct mount *fst_kr_file_mount(struct file *file)
{
	return fst_real_mount(BPF_CORE_READ(file, f_path.mnt));
}

static __always_inline int fst_kr_file_under_root(struct file *file)
{
	return fst_dentry_under_root(BPF_CORE_READ(file, f_path.dentry), fst_kr_file_mount(file));
}

static __always_inline struct fst_kr_record *fst_kr_begin(__u16 op)
{
	__u32 zero = 0;
	struct fst_kr_record *r = bpf_map_lookup_elem(&fst_kr_scratch, &zero);

	if (r)
		fst_event_begin(&r->ev, op);
	return r;
}

/* The path of an open file, at data[0]. */
static __always_inline void fst_kr_file_path(struct fst_kr_record *r, struct file *file)
{
	fst_event_walk_path(&r->ev, r->data, BPF_CORE_READ(file, f_path.dentry), fst_kr_file_mount(file));
	fst_event_set_inode(&r->ev, BPF_CORE_READ(file, f_inode));
}

static __always_inline void fst_kr_submit(struct fst_kr_record *r, long ret)
{
	__u32 size = sizeof(struct fst_event) + r->ev.path_len + r->ev.old_path_len;

	if (size > sizeof(*r))
		size = sizeof(*r);
	fst_event_seal(&r->ev, ret < 0 ? (__s32)ret : 0, size);
	fst_output_adaptive_or_count(r, size, r->ev.op);
}

/* ---- the path-argument filter ---- */

struct fst_kr_scan {
	char *arg;
	__u32 len;
	__u32 comp_len;
	__u32 all_dots;
	__u32 components;
	__u32 hashing; /* the start directory is above a root: look prefixes up */
	__u32 scope;
	__u64 committed; /* hash up to the last whole component */
	__u64 work;      /* hash with the component being read */
};

static long fst_kr_scan_byte(__u32 i, struct fst_kr_scan *s)
{
	char c = i < s->len ? s->arg[i & FST_PATH_MASK] : '/';

	if (c == '/') {
		if (s->comp_len == 0)
			return i >= s->len;
		if (s->all_dots && s->comp_len == 2) {
			s->scope = FST_KR_UNDECIDED; /* "..": user space decides on the joined path */
			return 1;
		}
		if (s->all_dots && s->comp_len == 1) {
			s->work = s->committed; /* "." */
		} else {
			s->committed = s->work;
			s->components++;
			if (s->hashing && bpf_map_lookup_elem(&fst_kr_prefixes, &s->committed)) {
				s->scope = FST_KR_INSIDE;
				return 1;
			}
		}
		s->comp_len = 0;
		s->all_dots = 1;
		return i >= s->len;
	}
	if (s->comp_len == 0) {
		s->work = s->committed;
		if (s->components)
			s->work = fst_kr_hash_byte(s->work, '/');
	}
	s->work = fst_kr_hash_byte(s->work, (__u8)c);
	s->comp_len++;
	if (c != '.')
		s->all_dots = 0;
	return 0;
}

/* Where `arg` (len bytes, no NUL) relative to the directory (dir, mnt) lies. */
static __always_inline __u32 fst_kr_arg_scope(char *arg, __u32 len, struct dentry *dir, struct mount *mnt)
{
	struct fst_kr_scan s = {.arg = arg, .len = len, .all_dots = 1, .scope = FST_KR_OUTSIDE};
	struct inode *inode;

	if (fst_dentry_under_root(dir, mnt))
		return FST_KR_INSIDE;
	inode = BPF_CORE_READ(dir, d_inode);
	if (inode) {
		struct fst_root_key key = {
			.dev = fst_encode_dev(BPF_CORE_READ(inode, i_sb, s_dev)),
			.ino = BPF_CORE_READ(inode, i_ino),
		};
		if (bpf_map_lookup_elem(&fst_kr_ancestors, &key)) {
			s.hashing = 1;
			s.committed = fst_kr_dir_seed(key.dev, key.ino);
		}
	}
	bpf_loop(FST_PATH_MAX + 1, fst_kr_scan_byte, &s, 0);
	return s.scope;
}

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

/* ---- syscall entries: keep the arguments ---- */

static __always_inline int fst_kr_keep(struct fst_kr_call *call)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (bpf_map_update_elem(&fst_kr_calls, &tid, call, BPF_ANY))
		fst_count_lost(call->op);
	return 0;
}

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
	if ((flags & (FST_O_WRONLY | FST_O_RDWR)) && fst_wanted(FST_OP_MODIFY)) {
		struct fst_kr_fd_key key = {.tgid = tgid, .fd = ret};
		struct fst_kr_write w = {.file = (__u64)file};
		__u32 one = 1, *count;

		if (bpf_map_update_elem(&fst_kr_write_fds, &key, &w, BPF_ANY)) {
			fst_count_lost(FST_OP_MODIFY);
			return;
		}
		count = bpf_map_lookup_elem(&fst_kr_writers, &tgid);
		if (count)
			__sync_fetch_and_add(count, 1);
		else if (bpf_map_update_elem(&fst_kr_writers, &tgid, &one, BPF_ANY))
			fst_count_lost(FST_OP_MODIFY);
	}
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

/* ---- modify: one per open-for-write fd, at its close ---- */

static __always_inline int fst_sys_write(__s32 fd)
{
	struct fst_kr_fd_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd};
	struct fst_kr_write *w = bpf_map_lookup_elem(&fst_kr_write_fds, &key);

	if (!w || w->written)
		return 0;
	fst_fill_task_actor(&w->writer);
	w->written = 1;
	return 0;
}

/* The modify of a written fd, named by its file now (it is still open: verified). */
static __always_inline void fst_kr_send_modify(__s32 fd, struct fst_kr_write *w)
{
	struct file *file = fst_kr_file_of(fd);
	struct fst_kr_record *r;

	if (!file || (__u64)file != w->file) {
		fst_count_lost(FST_OP_MODIFY); /* closed without a close call (exec's O_CLOEXEC) */
		return;
	}
	r = fst_kr_begin(FST_OP_MODIFY);
	if (!r)
		return;
	fst_kr_file_path(r, file);
	r->ev.actor = w->writer;
	fst_kr_submit(r, 0);
}

static __always_inline void fst_kr_forget_writer_fd(__u32 tgid)
{
	__u32 *count = bpf_map_lookup_elem(&fst_kr_writers, &tgid);

	if (count && *count > 1)
		__sync_fetch_and_add(count, -1);
	else if (count)
		bpf_map_delete_elem(&fst_kr_writers, &tgid);
}

/* The fd is closing (it still names its file): its modify, if it was written. */
static __always_inline void fst_kr_close_fd(__u32 tgid, __s32 fd)
{
	struct fst_kr_fd_key key = {.tgid = tgid, .fd = fd};
	struct fst_kr_write *found = bpf_map_lookup_elem(&fst_kr_write_fds, &key);
	struct fst_kr_write w;

	if (!found)
		return;
	w = *found;
	bpf_map_delete_elem(&fst_kr_write_fds, &key);
	fst_kr_forget_writer_fd(tgid);
	if (w.written)
		fst_kr_send_modify(fd, &w);
}

static __always_inline int fst_sys_close(__s32 fd)
{
	fst_kr_close_fd(bpf_get_current_pid_tgid() >> 32, fd);
	return 0;
}

/* dup, dup2, dup3, fcntl(F_DUPFD*): the new fd of a tracked file is tracked too. */
static __always_inline int fst_sys_dup(__s32 old_fd, __s32 new_fd)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct fst_kr_fd_key old_key = {.tgid = tgid, .fd = old_fd};
	struct fst_kr_call call = {.op = FST_OP_MODIFY, .kind = FST_KR_DUP, .dirfd = old_fd};

	if (new_fd >= 0 && new_fd != old_fd)
		fst_kr_close_fd(tgid, new_fd); /* dup2 closes what new_fd named */
	if (!bpf_map_lookup_elem(&fst_kr_write_fds, &old_key))
		return 0;
	return fst_kr_keep(&call);
}

static __always_inline int fst_kr_exit_dup(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid(), tgid = bpf_get_current_pid_tgid() >> 32;
	struct fst_kr_call *call = bpf_map_lookup_elem(&fst_kr_calls, &tid);
	struct fst_kr_fd_key old_key = {.tgid = tgid}, new_key = {.tgid = tgid, .fd = ret};
	struct fst_kr_write *w;
	__u32 *count;

	if (!call)
		return 0;
	old_key.fd = call->dirfd;
	bpf_map_delete_elem(&fst_kr_calls, &tid);
	if (ret < 0 || ret == old_key.fd)
		return 0;
	w = bpf_map_lookup_elem(&fst_kr_write_fds, &old_key);
	if (!w)
		return 0;
	if (bpf_map_update_elem(&fst_kr_write_fds, &new_key, w, BPF_ANY)) {
		fst_count_lost(FST_OP_MODIFY);
		return 0;
	}
	count = bpf_map_lookup_elem(&fst_kr_writers, &tgid);
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

/* dup, dup2, dup3, fcntl: routed by the loader too. */
SEC("tracepoint/syscalls/sys_exit_dup")
int kr_exit_dup(struct fst_syscall_exit_args *ctx) { return fst_kr_exit_dup(ctx->ret); }

#define FST_SYS_PREFIX kr_enter_
#include "backend/bpf/tracepoint/syscall_args.bpf.h"

/* bpf_for_each_map_elem's context must be on the stack: it points to the map value. */
struct fst_kr_flush_ctx {
	struct fst_kr_flush *flush;
};

static long fst_kr_collect(struct bpf_map *map, struct fst_kr_fd_key *key, struct fst_kr_write *w,
			   struct fst_kr_flush_ctx *ctx)
{
	struct fst_kr_flush *flush = ctx->flush;
	__u32 n = flush->count;

	if (key->tgid != flush->tgid)
		return 0;
	if (w->written) {
		if (n < FST_KR_FLUSH_MAX) {
			flush->fds[n] = key->fd;
			flush->writes[n] = *w;
			flush->count = n + 1;
		} else {
			flush->overflow++;
		}
	}
	bpf_map_delete_elem(map, key);
	return 0;
}

/* Exit and exec close fds without a close call: their modifies go now. */
static __always_inline void fst_kr_flush_writes(__u32 tgid)
{
	__u32 zero = 0;
	struct fst_kr_flush *flush;
	struct fst_kr_flush_ctx ctx;

	if (!bpf_map_lookup_elem(&fst_kr_writers, &tgid))
		return;
	bpf_map_delete_elem(&fst_kr_writers, &tgid);
	flush = bpf_map_lookup_elem(&fst_kr_flush_scratch, &zero);
	if (!flush)
		return;
	flush->tgid = tgid;
	flush->count = 0;
	flush->overflow = 0;
	ctx.flush = flush;
	bpf_for_each_map_elem(&fst_kr_write_fds, fst_kr_collect, &ctx, 0);
	for (__u32 i = 0; i < FST_KR_FLUSH_MAX; i++) {
		if (i >= flush->count)
			break;
		fst_kr_send_modify(flush->fds[i], &flush->writes[i]);
	}
	for (__u32 i = 0; i < FST_KR_FLUSH_MAX && i < flush->overflow; i++)
		fst_count_lost(FST_OP_MODIFY);
}

/* ---- process lifetime ---- */

SEC("tracepoint/sched/sched_process_exit")
int kr_process_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct fst_dirfd *rec;

	if ((__u32)pid_tgid != tgid)
		return 0; /* a thread: the process and its files live on */
	fst_kr_flush_writes(tgid);
	if (!bpf_map_lookup_elem(&fst_exe_seen, &tgid))
		return 0;
	bpf_map_delete_elem(&fst_exe_seen, &tgid);
	/* user space forgets its exe: a later process with this pid is not lent it */
	rec = fst_reserve_or_count(sizeof(*rec), 0);
	if (!rec)
		return 0;
	fst_fill_header(&rec->hdr, FST_REC_DIRFD, sizeof(*rec));
	rec->pid = tgid;
	rec->fd = FST_DIRFD_EXITED;
	rec->dirfd = FST_DIRFD_EXITED;
	rec->path_len = 0;
	rec->_pad = 0;
	bpf_ringbuf_submit(rec, fst_wakeup_flags());
	return 0;
}

/* A new image: its exe is sent before its next event. */
SEC("tracepoint/sched/sched_process_exec")
int kr_process_exec(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	fst_kr_flush_writes(tgid);
	bpf_map_delete_elem(&fst_exe_seen, &tgid);
	return 0;
}
