/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Capturing a file operation in the kernel, shared by the bpf-lsm and bpf-fentry
 * programs (which differ only in where they hook):
 *
 *  - the subtree filter: watched roots are (st_dev, st_ino) pairs in fst_roots; an
 *    object passes when it or an ancestor is a root. One bounded walk (bpf_loop) up
 *    d_parent, crossing mount points through struct mount, does one hash lookup per
 *    level and collects the names on the way, so the filter and the path cost one
 *    O(depth) walk, independent of the number of roots;
 *  - "capture, then finish": a hook that runs before the operation builds the whole
 *    record into fst_pending[tid, op]; a later hook that knows the result (fexit, or
 *    the syscall's exit) submits it, with `error` set, or drops it (success only);
 *  - the actor, read from the current task (common.bpf.h has the ring buffer, the
 *    loss counters and the exec tracking).
 */
#ifndef FSTRAIL_FS_CAPTURE_BPF_H
#define FSTRAIL_FS_CAPTURE_BPF_H

#include "backend/bpf/common/common.bpf.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

/* The records below put room for the flexible array right after the wire struct. */
#pragma clang diagnostic ignored "-Wgnu-variable-sized-type-not-at-end"

/* Walk steps (dentry levels plus mount crossings); a depth-256 path fits. */
#define FST_WALK_STEPS 400
#define FST_NAME_MASK 255 /* longest name copied: NAME_MAX */
#define FST_PATH_MASK (FST_PATH_MAX - 1)
/* path (< FST_PATH_MAX + a name) then old_path (the same) */
#define FST_DATA_CAP (2 * FST_PATH_MAX + 2 * (FST_NAME_MASK + 1))

#define FST_MAY_WRITE 0x2
#define FST_FMODE_WRITE 0x2
#define FST_S_IFMT 00170000
#define FST_S_IFDIR 0040000
#define FST_ATTR_MODE (1 << 0)
#define FST_ATTR_UID (1 << 1)
#define FST_ATTR_GID (1 << 2)
#define FST_ATTR_SIZE (1 << 3)

/* Set by user space before load. */
const volatile __u32 fst_ops_wanted = 0;   /* bit (1 << op) per wanted op */
const volatile __u32 fst_report_failed = 0; /* also report failed/denied operations */

struct fst_root_key {
	__u64 dev; /* st_dev encoding */
	__u64 ino;
};

/* A record as built in the kernel: the wire event and room for its two paths (data
 * is ev.data, the flexible array, with room). */
struct fst_record {
	struct fst_event ev;
	char data[FST_DATA_CAP];
	/* not sent: the dentry an operation creates, whose inode is known after it */
	struct dentry *created;
};

struct fst_pending_key {
	__u32 tid;
	__u32 op;
};

/* A file opened for writing under a root: modify is reported at its last close. */
struct fst_open_file {
	__u32 written;
	__u32 _pad;
	struct fst_actor writer; /* the first writer */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fst_root_key);
	__type(value, __u8);
} fst_roots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fst_record);
} fst_scratch SEC(".maps");

/* Entries live from the hook before an operation to the one after it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fst_pending_key);
	__type(value, struct fst_record);
} fst_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* struct file * */
	__type(value, struct fst_open_file);
} fst_open_files SEC(".maps");

static __always_inline int fst_wanted(__u32 op)
{
	if (!(fst_ops_wanted & (1u << op)))
		return 0;
	return fst_agent_tgid == 0 || (bpf_get_current_pid_tgid() >> 32) != fst_agent_tgid;
}

/* new_encode_dev(): what stat(2) reports as st_dev. */
static __always_inline __u64 fst_encode_dev(__u32 kdev)
{
	__u32 major = kdev >> 20, minor = kdev & 0xfffff;

	return (minor & 0xff) | (major << 8) | ((__u64)(minor & ~0xffu) << 12);
}

/* The common actor plus what only a task read gives: effective ids, ppid, login. */
static __always_inline void fst_fill_task_actor(struct fst_actor *a)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	const struct cred *cred = BPF_CORE_READ(task, cred);

	fst_fill_actor(a);
	a->euid = BPF_CORE_READ(cred, euid.val);
	a->egid = BPF_CORE_READ(cred, egid.val);
	a->ppid = BPF_CORE_READ(task, real_parent, tgid);
	a->valid = (a->valid & ~FST_AF_NO_EFFECTIVE_IDS) | FST_AF_PPID;
	/* CONFIG_AUDIT kernels only */
	if (bpf_core_field_exists(task->loginuid)) {
		a->loginuid = BPF_CORE_READ(task, loginuid.val);
		a->sessionid = BPF_CORE_READ(task, sessionid);
		a->valid |= FST_AF_LOGINUID | FST_AF_SESSIONID;
	}
}

static __always_inline struct mount *fst_real_mount(struct vfsmount *vfsmnt)
{
	return (struct mount *)((char *)vfsmnt - bpf_core_field_offset(struct mount, mnt));
}

/* Hooks that only see a dentry: take a mount of its filesystem (the first one; a
 * bind-mounted file may then be named through another mount of the same file). */
struct super_block___list_of_mounts { /* before 6.16: a list through mount.mnt_instance */
	struct list_head s_mounts;
} __attribute__((preserve_access_index));
struct mount___on_list {
	struct list_head mnt_instance;
} __attribute__((preserve_access_index));

static __always_inline struct mount *fst_mount_of_dentry(struct dentry *dentry)
{
	struct super_block *sb = BPF_CORE_READ(dentry, d_sb);
	struct super_block___list_of_mounts *old_sb = (void *)sb;
	struct list_head *first;

	if (bpf_core_field_size(old_sb->s_mounts) == sizeof(struct list_head)) {
		first = BPF_CORE_READ(old_sb, s_mounts.next);
		return (struct mount *)((char *)first -
					bpf_core_field_offset(struct mount___on_list, mnt_instance));
	}
	return BPF_CORE_READ(sb, s_mounts);
}

struct fst_walk {
	struct dentry *dentry;
	struct mount *mnt;
	char *buf; /* names go here, leaf first, NUL after each; NULL: filter only */
	__u32 len;
	__u32 matched;
	__u32 truncated;
	__u32 complete;
};

static long fst_walk_step(__u32 index, struct fst_walk *w)
{
	struct dentry *d = w->dentry, *parent;
	struct mount *mnt = w->mnt, *mnt_parent;
	struct inode *inode;
	const unsigned char *name;
	__u32 len, off;
	char *buf;

	if (!w->matched) {
		inode = BPF_CORE_READ(d, d_inode);
		if (inode) {
			struct fst_root_key key = {
				.dev = fst_encode_dev(BPF_CORE_READ(inode, i_sb, s_dev)),
				.ino = BPF_CORE_READ(inode, i_ino),
			};
			if (bpf_map_lookup_elem(&fst_roots, &key)) {
				w->matched = 1;
				if (!w->buf)
					return 1;
			}
		}
	}
	if (d == BPF_CORE_READ(mnt, mnt.mnt_root)) {
		mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
		if (mnt_parent == mnt) { /* the root of the mount namespace */
			w->complete = 1;
			return 1;
		}
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = mnt_parent;
		return 0;
	}
	parent = BPF_CORE_READ(d, d_parent);
	if (parent == d) { /* a detached tree */
		w->complete = 1;
		return 1;
	}
	buf = w->buf;
	if (buf && !w->truncated) {
		len = BPF_CORE_READ(d, d_name.len) & FST_NAME_MASK;
		name = BPF_CORE_READ(d, d_name.name);
		if (w->len + len + 1 > FST_PATH_MAX) {
			w->truncated = 1;
		} else {
			off = w->len & FST_PATH_MASK;
			bpf_probe_read_kernel(buf + off, len, name);
			buf[off + len] = 0;
			w->len += len + 1;
		}
	}
	w->dentry = parent;
	return 0;
}

/* Walks from dentry (in mnt) to the namespace root: *matched says whether the path
 * is under a root; names are written to buf (NULL: stop at the first root). */
/*
 * Always 0, but read from .bss so the verifier cannot know it. Before Linux 6.7 the
 * verifier checked a bpf_loop callback for one call only (fixed by "bpf: verify callbacks
 * as if they are called unknown number of times"): with the walk's length a known 0 it
 * found the "path too long" branch unreachable and removed it, so on 6.1 a path over
 * FST_PATH_MAX wrapped around the buffer and was reported as one that never existed.
 */
__u32 fst_walk_start_len = 0;

static __always_inline __u32 fst_walk(struct dentry *dentry, struct mount *mnt, char *buf,
				      __u32 *matched, __u32 *truncated)
{
	struct fst_walk w = { .dentry = dentry, .mnt = mnt, .buf = buf, .len = fst_walk_start_len };

	bpf_loop(FST_WALK_STEPS, fst_walk_step, &w, 0);
	*matched = w.matched;
	*truncated = w.truncated || (buf && !w.complete);
	return w.len;
}

static __always_inline int fst_dentry_under_root(struct dentry *dentry, struct mount *mnt)
{
	__u32 matched, truncated;

	fst_walk(dentry, mnt, 0, &matched, &truncated);
	return matched;
}

/* A new event of `op` by the current task (every record type that carries one). */
static __always_inline void fst_event_begin(struct fst_event *ev, __u32 op)
{
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->hdr.type = FST_REC_EVENT;
	ev->hdr.version = FST_WIRE_VERSION;
	ev->op = op;
	fst_fill_task_actor(&ev->actor);
}

static __always_inline void fst_event_set_inode(struct fst_event *ev, struct inode *inode)
{
	__u16 mode;

	if (!inode)
		return;
	mode = BPF_CORE_READ(inode, i_mode);
	ev->dev = fst_encode_dev(BPF_CORE_READ(inode, i_sb, s_dev));
	ev->ino = BPF_CORE_READ(inode, i_ino);
	ev->flags |= FST_EF_HAS_INODE;
	if ((mode & FST_S_IFMT) == FST_S_IFDIR)
		ev->flags |= FST_EF_IS_DIR;
}

/* The event's path: dentry's names into buf; returns whether it is under a root. */
static __always_inline int fst_event_walk_path(struct fst_event *ev, char *buf, struct dentry *dentry,
					       struct mount *mnt)
{
	__u32 matched, truncated;
	__u32 len = fst_walk(dentry, mnt, buf, &matched, &truncated);

	ev->path_enc = FST_PATH_REVERSED_COMPONENTS;
	ev->path_len = len;
	if (truncated)
		ev->flags |= FST_EF_PATH_TRUNCATED;
	return matched;
}

static __always_inline struct fst_record *fst_scratch_record(__u32 op)
{
	__u32 zero = 0;
	struct fst_record *r = bpf_map_lookup_elem(&fst_scratch, &zero);

	if (!r)
		return 0;
	fst_event_begin(&r->ev, op);
	r->created = 0;
	return r;
}

static __always_inline void fst_set_inode(struct fst_record *r, struct inode *inode)
{
	fst_event_set_inode(&r->ev, inode);
}

/* Path of dentry into the record; returns whether it is under a root. */
static __always_inline int fst_record_path(struct fst_record *r, struct dentry *dentry, struct mount *mnt)
{
	return fst_event_walk_path(&r->ev, r->data, dentry, mnt);
}

static __always_inline int fst_record_old_path(struct fst_record *r, struct dentry *dentry, struct mount *mnt)
{
	__u32 matched, truncated, len, base = r->ev.path_len;

	if (base > FST_PATH_MAX)
		base = FST_PATH_MAX;
	len = fst_walk(dentry, mnt, r->data + base, &matched, &truncated);
	r->ev.old_path_enc = FST_PATH_REVERSED_COMPONENTS;
	r->ev.old_path_len = len;
	if (truncated)
		r->ev.flags |= FST_EF_OLD_PATH_TRUNCATED;
	return matched;
}

static __always_inline __u32 fst_record_size(const struct fst_record *r)
{
	__u32 size = sizeof(struct fst_event) + r->ev.path_len + r->ev.old_path_len;

	return size > sizeof(struct fst_record) ? sizeof(struct fst_record) : size;
}

/*
 * exe: the executable file itself (mm->exe_file, walked like any path), not the name
 * passed to exec (a symbolic link, or a name only valid inside a chroot). Sent as an
 * FST_REC_EXE record before a process's first event since load or since its exec;
 * user space keeps it by pid in ring-buffer order. A pid's entry is forgotten at exec
 * and exit, so a later process with the same pid announces its own.
 */
struct fst_exe_record {
	struct fst_exe x;
	char path[FST_PATH_MAX + FST_NAME_MASK + 1];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fst_exe_record);
} fst_exe_scratch SEC(".maps");

/* Processes whose exe user space has (since load, since their last exec). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} fst_exe_seen SEC(".maps");

static __always_inline void fst_announce_exe(__u32 tgid)
{
	__u32 zero = 0, matched = 0, truncated = 0, len = 0;
	__u8 one = 1;
	struct fst_exe_record *x;
	struct file *exe;

	if (bpf_map_lookup_elem(&fst_exe_seen, &tgid))
		return;
	if (bpf_map_update_elem(&fst_exe_seen, &tgid, &one, BPF_NOEXIST))
		return; /* another thread of it was first */
	x = bpf_map_lookup_elem(&fst_exe_scratch, &zero);
	if (!x)
		return;
	exe = BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), mm, exe_file);
	if (exe)
		len = fst_walk(BPF_CORE_READ(exe, f_path.dentry), fst_real_mount(BPF_CORE_READ(exe, f_path.mnt)), x->path,
			       &matched, &truncated);
	if (len > FST_PATH_MAX)
		len = FST_PATH_MAX;
	x->x.pid = tgid;
	x->x.path_enc = exe ? FST_PATH_REVERSED_COMPONENTS : FST_PATH_NONE;
	x->x.truncated = truncated ? 1 : 0;
	x->x.path_len = len;
	fst_fill_header(&x->x.hdr, FST_REC_EXE, sizeof(struct fst_exe) + len);
#ifdef FST_ADAPTIVE_WAKEUPS
	fst_output_adaptive_or_count(x, sizeof(struct fst_exe) + len, 0);
#else
	fst_output_or_count(x, sizeof(struct fst_exe) + len, 0);
#endif
}

#ifndef FST_OWN_EXE_LIFECYCLE
/* A new image, or a process gone: the next event of this pid announces its exe. */
SEC("tracepoint/sched/sched_process_exec")
int fst_exe_on_exec(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	bpf_map_delete_elem(&fst_exe_seen, &tgid);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int fst_exe_on_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;

	if ((__u32)pid_tgid == tgid) /* the process, not one of its threads */
		bpf_map_delete_elem(&fst_exe_seen, &tgid);
	return 0;
}
#endif

/* The event is complete (size: of its record, paths included): stamped, its exe announced. */
static __always_inline void fst_event_seal(struct fst_event *ev, __s32 error, __u32 size)
{
	ev->error = error;
	ev->hdr.size = size;
	ev->hdr.ktime_ns = bpf_ktime_get_boot_ns();
	fst_announce_exe(ev->actor.pid);
}

static __always_inline void fst_submit(struct fst_record *r, __s32 error)
{
	__u32 size = fst_record_size(r);

	fst_event_seal(&r->ev, error, size);
	fst_output_or_count(r, size, r->ev.op);
}

/* Keeps the scratch record until the operation's result is known. */
static __always_inline void fst_hold(struct fst_record *r)
{
	struct fst_pending_key key = { .tid = r->ev.actor.tid, .op = r->ev.op };

	if (bpf_map_update_elem(&fst_pending, &key, r, BPF_ANY))
		fst_count_map_full(r->ev.op);
}

/* The operation `op` of the current thread ended with `ret` (< 0: -errno). Returns
 * whether a record was pending. */
static __always_inline int fst_finish(__u32 op, long ret, struct dentry *result)
{
	struct fst_pending_key key = { .tid = (__u32)bpf_get_current_pid_tgid(), .op = op };
	struct fst_record *r = bpf_map_lookup_elem(&fst_pending, &key);

	if (!r)
		return 0;
	if (ret >= 0 || fst_report_failed) {
		if (!result)
			result = r->created;
		if (ret >= 0 && result && !(r->ev.flags & FST_EF_HAS_INODE))
			fst_set_inode(r, BPF_CORE_READ(result, d_inode));
		fst_submit(r, ret < 0 ? (__s32)ret : 0);
	}
	bpf_map_delete_elem(&fst_pending, &key);
	return 1;
}

/* ---- the captures, one per kind; each hook type calls these ---- */

/* An object that a directory entry names: create, mkdir, delete, rmdir, link, symlink,
 * truncate, xattr. `object`: the dentry whose inode it is (link: the existing file). */
static __always_inline void fst_capture_entry(__u32 op, struct dentry *dentry, struct mount *mnt,
					      struct dentry *object, int hold)
{
	struct fst_record *r;
	struct inode *inode;

	if (!fst_wanted(op))
		return;
	r = fst_scratch_record(op);
	if (!r)
		return;
	inode = BPF_CORE_READ(object, d_inode);
	fst_set_inode(r, inode);
	r->created = inode ? 0 : dentry;
	if (op == FST_OP_MKDIR || op == FST_OP_RMDIR)
		r->ev.flags |= FST_EF_IS_DIR;
	if (!fst_record_path(r, dentry, mnt))
		return;
	if (hold)
		fst_hold(r);
	else
		fst_submit(r, 0);
}

static __always_inline void fst_capture_path(__u32 op, const struct path *path, int hold)
{
	struct dentry *dentry = BPF_CORE_READ(path, dentry);

	fst_capture_entry(op, dentry, fst_real_mount(BPF_CORE_READ(path, mnt)), dentry, hold);
}

static __always_inline void fst_capture_rename(struct dentry *old_dentry, struct mount *old_mnt,
					       struct dentry *new_dentry, struct mount *new_mnt)
{
	struct fst_record *r;
	int under;

	if (!fst_wanted(FST_OP_RENAME))
		return;
	r = fst_scratch_record(FST_OP_RENAME);
	if (!r)
		return;
	fst_set_inode(r, BPF_CORE_READ(old_dentry, d_inode));
	under = fst_record_path(r, new_dentry, new_mnt);
	under |= fst_record_old_path(r, old_dentry, old_mnt);
	if (under)
		fst_hold(r);
}

static __always_inline void fst_capture_chmod(const struct path *path, __u32 new_mode)
{
	struct dentry *dentry = BPF_CORE_READ(path, dentry);
	struct fst_record *r;

	if (!fst_wanted(FST_OP_CHMOD))
		return;
	r = fst_scratch_record(FST_OP_CHMOD);
	if (!r)
		return;
	fst_set_inode(r, BPF_CORE_READ(dentry, d_inode));
	r->ev.old_mode = BPF_CORE_READ(dentry, d_inode, i_mode);
	/* chmod_common(): the type bits stay, the rest comes from the call */
	r->ev.new_mode = (new_mode & 07777) | (r->ev.old_mode & FST_S_IFMT);
	r->ev.flags |= FST_EF_HAS_OLD_MODE | FST_EF_HAS_NEW_MODE;
	if (fst_record_path(r, dentry, fst_real_mount(BPF_CORE_READ(path, mnt))))
		fst_hold(r);
}

static __always_inline void fst_capture_chown(const struct path *path, __u32 new_uid, __u32 new_gid)
{
	struct dentry *dentry = BPF_CORE_READ(path, dentry);
	struct fst_record *r;

	if (!fst_wanted(FST_OP_CHOWN))
		return;
	r = fst_scratch_record(FST_OP_CHOWN);
	if (!r)
		return;
	fst_set_inode(r, BPF_CORE_READ(dentry, d_inode));
	r->ev.old_uid = BPF_CORE_READ(dentry, d_inode, i_uid.val);
	r->ev.old_gid = BPF_CORE_READ(dentry, d_inode, i_gid.val);
	r->ev.flags |= FST_EF_HAS_OLD_OWNER;
	/* chown_common() passes INVALID_UID/GID for "-1: keep" */
	if (new_uid != 0xffffffffu) {
		r->ev.new_uid = new_uid;
		r->ev.flags |= FST_EF_HAS_NEW_UID;
	}
	if (new_gid != 0xffffffffu) {
		r->ev.new_gid = new_gid;
		r->ev.flags |= FST_EF_HAS_NEW_GID;
	}
	if (fst_record_path(r, dentry, fst_real_mount(BPF_CORE_READ(path, mnt))))
		fst_hold(r);
}

/* ---- modify: one event per open-write-close ---- */

static __always_inline void fst_track_open_for_write(struct file *file)
{
	struct fst_open_file fresh = {};
	__u64 key = (__u64)file;

	if (!(BPF_CORE_READ(file, f_mode) & FST_FMODE_WRITE) || !fst_wanted(FST_OP_MODIFY))
		return;
	if (!fst_dentry_under_root(BPF_CORE_READ(file, f_path.dentry),
				   fst_real_mount(BPF_CORE_READ(file, f_path.mnt))))
		return;
	if (bpf_map_update_elem(&fst_open_files, &key, &fresh, BPF_ANY))
		fst_count_map_full(FST_OP_MODIFY);
}

static __always_inline void fst_track_write(struct file *file, int mask)
{
	struct fst_open_file *f;
	__u64 key = (__u64)file;

	if (!(mask & FST_MAY_WRITE))
		return;
	f = bpf_map_lookup_elem(&fst_open_files, &key);
	if (!f || f->written)
		return;
	fst_fill_task_actor(&f->writer);
	f->written = 1;
}

static __always_inline void fst_track_release(struct file *file)
{
	struct fst_open_file *f;
	struct fst_record *r;
	__u64 key = (__u64)file;
	struct dentry *dentry;

	f = bpf_map_lookup_elem(&fst_open_files, &key);
	if (!f)
		return;
	if (f->written && (r = fst_scratch_record(FST_OP_MODIFY))) {
		r->ev.actor = f->writer;
		dentry = BPF_CORE_READ(file, f_path.dentry);
		fst_set_inode(r, BPF_CORE_READ(file, f_inode));
		fst_record_path(r, dentry, fst_real_mount(BPF_CORE_READ(file, f_path.mnt)));
		fst_submit(r, 0);
	}
	bpf_map_delete_elem(&fst_open_files, &key);
}

static __always_inline void fst_emit_open(struct file *file, long ret)
{
	struct fst_record *r;

	if (!fst_wanted(FST_OP_OPEN) || (ret < 0 && !fst_report_failed))
		return;
	r = fst_scratch_record(FST_OP_OPEN);
	if (!r)
		return;
	fst_set_inode(r, BPF_CORE_READ(file, f_inode));
	if (fst_record_path(r, BPF_CORE_READ(file, f_path.dentry),
			    fst_real_mount(BPF_CORE_READ(file, f_path.mnt))))
		fst_submit(r, ret < 0 ? (__s32)ret : 0);
}

#endif /* FSTRAIL_FS_CAPTURE_BPF_H */
