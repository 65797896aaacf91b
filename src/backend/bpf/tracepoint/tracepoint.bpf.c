// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bpf-tracepoint: file changes from syscall tracepoints, the one eBPF program type
 * that loads under kernel lockdown. Nothing here reads kernel memory: arguments
 * come from the tracepoint record, paths from the caller's memory at sys_enter,
 * the result from sys_exit. Entry and exit are joined in a tid-keyed map.
 *
 * Filtering: an absolute path is compared against the watched roots; a path
 * relative to the cwd uses a per-process "cwd inside a watched tree" state that
 * user space fills and the kernel invalidates on chdir; anything else (dirfd-
 * relative, fd-based) is left to user space, which filters exactly.
 */
#define FST_ADAPTIVE_WAKEUPS 1
#include "backend/bpf/common/common.bpf.h"
#include "backend/bpf/tracepoint/tracepoint.bpf.h"
#include "backend/bpf/tracepoint/dispatch.bpf.h"
#include "backend/bpf/tracepoint/exec_name.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define FST_DATA_MAX (2 * FST_PATH_MAX)
#define FST_OUTSIDE FST_SCOPE_OUTSIDE
#define FST_INSIDE FST_SCOPE_INSIDE
#define FST_UNDECIDED FST_SCOPE_UNDECIDED
#define FST_ANCESTOR FST_SCOPE_ANCESTOR

const volatile __u32 fst_op_mask = 0;	   /* 1 << op for each op to report */
const volatile __u32 fst_report_failed = 0;
const volatile __u32 fst_root_count = 0;
const volatile struct fst_tp_root fst_roots[FST_TP_MAX_ROOTS] = {};
/* Where sched_process_fork keeps child_pid; user space reads it from tracefs. The
 * layout changed when the comms became __data_loc strings (Linux 6.x: 20, before: 44). */
const volatile __u32 fst_fork_child_pid_offset = 20;

/* An open between enter and exit, when only its scope is needed (a directory outside). */
struct fst_open_scope {
	__u32 scope;
	__u32 flags;
};

struct fst_dup_args {
	__s32 old_fd;
	__s32 new_fd; /* -1: the lowest free fd, known at exit */
};

struct fst_dirfd_record {
	__u8 bytes[sizeof(struct fst_dirfd) + FST_PATH_MAX];
};

/* A syscall between enter and exit; also a file open for writing (fst_write_fds). */
struct fst_pending {
	__u32 open_flags; /* open family: flags; otherwise 0 */
	__u32 scope;	  /* enum fst_tp_scope of path */
	__u64 user_path;  /* the path argument, to read again at exit */
	__u64 open_id;	  /* fst_write_fds: the open file description (fst_open_files) */
	__u8 record[sizeof(struct fst_event) + FST_DATA_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fst_pending);
} fst_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32); /* tid */
	__type(value, struct fst_pending);
} fst_in_flight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fst_tp_fd_key);
	__type(value, struct fst_pending);
} fst_write_fds SEC(".maps");

/* Directories a process holds open, by where they lie (inside or outside only). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fst_tp_fd_key);
	__type(value, __u32);
} fst_dir_fds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32); /* tid */
	__type(value, struct fst_open_scope);
} fst_dir_open_in_flight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32); /* tid */
	__type(value, struct fst_dup_args);
} fst_dup_in_flight SEC(".maps");

/* child tgid -> parent tgid at fork: user space resolves the paths of a child that
 * exited before /proc was read against its parent's cwd. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} fst_parent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fst_dirfd_record);
} fst_dirfd_scratch SEC(".maps");

/* An open file description written through any of its fds (dup copies fds, not
 * descriptions): one modify when the last fd of this process closes. */
struct fst_open_file {
	__u32 refs;
	__u32 dirty;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* open_id */
	__type(value, struct fst_open_file);
} fst_open_files SEC(".maps");

/*
 * Per process with an entry in fst_write_fds or fst_dir_fds: one more than the highest
 * fd it has had there. Exit and exec visit just those fds; scanning the two maps (80k
 * slots) instead cost every process on the machine 0.2-1.2 ms at exit and exec.
 */
#define FST_FD_WALK_MAX 4096 /* a higher ceiling scans the maps instead */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32); /* tgid */
	__type(value, __u32);
} fst_fd_ceiling SEC(".maps");

/* Set once a ceiling could not be stored: from then on exit and exec scan the maps. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} fst_fd_ceiling_lost SEC(".maps");

/* Before an entry for (tgid, fd) goes into fst_write_fds or fst_dir_fds. */
static __always_inline void fst_raise_fd_ceiling(__u32 tgid, __s32 fd)
{
	__u32 ceiling = (__u32)fd + 1;
	__u32 *known = bpf_map_lookup_elem(&fst_fd_ceiling, &tgid);
	if (!known) {
		if (bpf_map_update_elem(&fst_fd_ceiling, &tgid, &ceiling, BPF_NOEXIST) == 0)
			return;
		known = bpf_map_lookup_elem(&fst_fd_ceiling, &tgid); /* another thread's, just now */
	}
	if (!known) {
		__u32 zero = 0, one = 1;
		bpf_map_update_elem(&fst_fd_ceiling_lost, &zero, &one, BPF_ANY);
		return;
	}
	/* Threads of one process racing here could lose the higher fd: the same non-atomic
	 * update as fst_release_file's (BPF v1 has no compare-and-swap). */
	if (*known < ceiling)
		*known = ceiling;
}

/* Per process: chdir count (kernel-owned) and cwd state (written by user space). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} fst_cwd_epoch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct fst_tp_cwd_state);
} fst_cwd_state SEC(".maps");

/* Processes whose new cwd the kernel could not place: user space looks at /proc soon. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 4096);
	__type(value, __u32);
} fst_cwd_unknown SEC(".maps");

static __always_inline struct fst_event *fst_event_of(struct fst_pending *p)
{
	return (struct fst_event *)p->record;
}

static __always_inline char *fst_data_of(struct fst_pending *p)
{
	return (char *)p->record + sizeof(struct fst_event);
}

static __always_inline int fst_wanted(__u16 op)
{
	return fst_op_mask & (1U << op);
}

/* Starts a record in this CPU's scratch space; NULL when the op is not reported. */
static __always_inline struct fst_pending *fst_begin(__u16 op)
{
	__u32 zero = 0;

	if (fst_is_agent())
		return NULL;
	struct fst_pending *p = bpf_map_lookup_elem(&fst_scratch, &zero);
	if (!p)
		return NULL;
	struct fst_event *e = fst_event_of(p);
	__builtin_memset(e, 0, sizeof(*e));
	p->open_flags = 0;
	p->open_id = 0;
	e->op = op;
	e->hdr.type = FST_REC_EVENT;
	e->hdr.version = FST_WIRE_VERSION;
	e->hdr.ktime_ns = bpf_ktime_get_boot_ns();
	return p; /* the actor is filled by fst_hold, for records that are kept */
}

struct fst_root_match {
	struct fst_pending *p;
	__u32 off; /* of the path in data */
	__u32 len;
	__u32 scope;
};

struct fst_byte_compare {
	char *data;
	__u32 off;
	__u32 root;
	__u32 differs;
};

static long fst_compare_byte(__u32 i, struct fst_byte_compare *c)
{
	if (c->data[(c->off + i) & (FST_DATA_MAX - 1)] !=
	    fst_roots[c->root & (FST_TP_MAX_ROOTS - 1)].path[i & (FST_TP_ROOT_MAX - 1)]) {
		c->differs = 1;
		return 1;
	}
	return 0;
}

static long fst_match_root(__u32 index, struct fst_root_match *m)
{
	if (index >= FST_TP_MAX_ROOTS)
		return 1;
	__u32 root_len = fst_roots[index].len;
	__u32 common = root_len < m->len ? root_len : m->len;
	char *data = fst_data_of(m->p);
	/* A callback, not a loop: verified once rather than once per byte. */
	struct fst_byte_compare cmp = {.data = data, .off = m->off, .root = index};
	bpf_loop(common, fst_compare_byte, &cmp, 0);
	if (cmp.differs)
		return 0;
	if (root_len <= m->len) {
		/* "/srv/a" contains "/srv/a" and "/srv/a/x", not "/srv/ab". */
		if (root_len == m->len || data[(m->off + root_len) & (FST_DATA_MAX - 1)] == '/') {
			m->scope = FST_INSIDE;
			return 1;
		}
		return 0;
	}
	/* "/srv" and "/srv/" are above "/srv/a". */
	if (m->len > 0 && (fst_roots[index].path[m->len & (FST_TP_ROOT_MAX - 1)] == '/' ||
			   data[(m->off + m->len - 1) & (FST_DATA_MAX - 1)] == '/'))
		m->scope = FST_ANCESTOR;
	return 0;
}

struct fst_dotdot_search {
	char *data;
	__u32 off;
	__u32 found;
};

static long fst_find_dotdot(__u32 i, struct fst_dotdot_search *s)
{
	if (s->data[(s->off + i) & (FST_DATA_MAX - 1)] == '.' &&
	    s->data[(s->off + i + 1) & (FST_DATA_MAX - 1)] == '.') {
		s->found = 1;
		return 1;
	}
	return 0;
}

static __always_inline int fst_cwd_scope(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct fst_tp_cwd_state *state = bpf_map_lookup_elem(&fst_cwd_state, &tgid);
	if (!state)
		return FST_UNDECIDED;
	__u64 *epoch = bpf_map_lookup_elem(&fst_cwd_epoch, &tgid);
	if (state->epoch != (epoch ? *epoch : 0))
		return FST_UNDECIDED; /* chdir since user space looked */
	return state->scope;
}

static __always_inline int fst_dirfd_scope(__s32 dirfd)
{
	if (dirfd == FST_AT_FDCWD)
		return fst_cwd_scope();
	struct fst_tp_fd_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .fd = dirfd};
	__u32 *scope = bpf_map_lookup_elem(&fst_dir_fds, &key);
	return scope ? *scope : FST_UNDECIDED;
}

/*
 * Where the path at data[off, off+len) lies, as far as the kernel can tell. Paths
 * are compared as passed: access through a symlink or another mount of a tree is
 * not recognised (docs/backends.md).
 */
static __always_inline int fst_path_scope_of(struct fst_pending *p, __u32 off, __u32 len, __s32 dirfd,
					     int is_dir_state)
{
	char *data = fst_data_of(p);

	if (len > 0 && data[off & (FST_DATA_MAX - 1)] == '/') {
		for (__u32 i = 0; i < FST_TP_MAX_ROOTS; i++)
			if (i < fst_root_count && fst_roots[i].len >= FST_TP_ROOT_MAX)
				return FST_UNDECIDED;
		struct fst_root_match m = {.p = p, .off = off, .len = len, .scope = FST_OUTSIDE};
		bpf_loop(fst_root_count, fst_match_root, &m, 0);
		return m.scope;
	}
	if (len == 0)
		return FST_UNDECIDED; /* the fd itself (AT_EMPTY_PATH) */
	int base = fst_dirfd_scope(dirfd);
	if (base != FST_INSIDE && base != FST_OUTSIDE)
		return FST_UNDECIDED;
	/* A file below an inside directory is inside: a ".." out of the tree is caught by
	 * user space's exact check. A directory kept as a cwd or dirfd must be exact. */
	if (base == FST_INSIDE && !is_dir_state)
		return FST_INSIDE;
	struct fst_dotdot_search search = {.data = data, .off = off};
	bpf_loop(len, fst_find_dotdot, &search, 0);
	return search.found ? FST_UNDECIDED : base;
}

static __always_inline int fst_path_scope(struct fst_pending *p, __u32 off, __u32 len, __s32 dirfd)
{
	return fst_path_scope_of(p, off, len, dirfd, 0);
}

/* Reads the path argument into data[0]; returns its scope, or -1 on a fault. */
static __always_inline int fst_add_path(struct fst_pending *p, __s32 dirfd, __u64 user_path)
{
	struct fst_event *e = fst_event_of(p);
	long n = bpf_probe_read_user_str(fst_data_of(p), FST_PATH_MAX, (const void *)user_path);
	if (n < 1)
		return -1;
	if (n >= FST_PATH_MAX)
		e->flags |= FST_EF_PATH_TRUNCATED;
	e->path_len = (n - 1) & (FST_PATH_MAX - 1);
	e->path_enc = FST_PATH_AS_PASSED;
	e->dirfd = dirfd;
	p->user_path = user_path;
	return fst_path_scope(p, 0, e->path_len, dirfd);
}

/* Reads the second path (rename source) after the first; returns its scope, or -1. */
static __always_inline int fst_add_old_path(struct fst_pending *p, __s32 dirfd, __u64 user_path)
{
	struct fst_event *e = fst_event_of(p);
	__u32 off = e->path_len & (FST_PATH_MAX - 1);
	long n = bpf_probe_read_user_str(fst_data_of(p) + off, FST_PATH_MAX, (const void *)user_path);
	if (n < 1)
		return -1;
	if (n >= FST_PATH_MAX)
		e->flags |= FST_EF_OLD_PATH_TRUNCATED;
	e->old_path_len = (n - 1) & (FST_PATH_MAX - 1);
	e->old_path_enc = FST_PATH_AS_PASSED;
	e->old_dirfd = dirfd;
	return fst_path_scope(p, off, e->old_path_len, dirfd);
}

struct fst_path_copy {
	__u64 *from;
	__u64 *to;
	__u32 words;
};

static long fst_copy_word(__u32 i, struct fst_path_copy *c)
{
	if (i >= c->words)
		return 1;
	c->to[i & (FST_PATH_MAX / 8 - 1)] = c->from[i & (FST_PATH_MAX / 8 - 1)];
	return 0;
}

/*
 * An fd-based call: the path is the file `fd` names. For a file this process
 * opened for writing under a tree, the kernel has the path from the open (still
 * right after the process exits); otherwise user space reads /proc/<pid>/fd.
 */
static __always_inline int fst_add_fd(struct fst_pending *p, __s32 fd)
{
	struct fst_event *e = fst_event_of(p);
	e->path_enc = FST_PATH_AS_PASSED;
	e->path_len = 0;
	e->dirfd = fd;
	struct fst_tp_fd_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd};
	struct fst_pending *opened = bpf_map_lookup_elem(&fst_write_fds, &key);
	if (!opened)
		return FST_UNDECIDED;
	struct fst_event *open_event = fst_event_of(opened);
	__u32 len = open_event->path_len & (FST_PATH_MAX - 1);
	struct fst_path_copy copy = {
		.from = (__u64 *)fst_data_of(opened), .to = (__u64 *)fst_data_of(p), .words = (len + 7) / 8};
	bpf_loop(FST_PATH_MAX / 8, fst_copy_word, &copy, 0);
	e->path_len = len;
	e->dirfd = open_event->dirfd;
	e->flags |= open_event->flags & FST_EF_PATH_TRUNCATED;
	return opened->scope == FST_INSIDE ? FST_INSIDE : FST_UNDECIDED;
}

/* Keeps the record until sys_exit, unless the kernel knows it is outside every tree. */
static __always_inline int fst_hold(struct fst_pending *p, int scope)
{
	if (scope == FST_OUTSIDE || scope == FST_ANCESTOR || scope < 0)
		return 0;
	p->scope = scope;
	fst_fill_actor(&fst_event_of(p)->actor);
	__u32 tid = fst_event_of(p)->actor.tid;
	if (bpf_map_update_elem(&fst_in_flight, &tid, p, BPF_ANY))
		fst_count_map_full(fst_event_of(p)->op);
	return 0;
}

static __always_inline int fst_either(int a, int b)
{
	if (a == FST_INSIDE || b == FST_INSIDE)
		return FST_INSIDE;
	if (a == FST_UNDECIDED || b == FST_UNDECIDED)
		return FST_UNDECIDED;
	return FST_OUTSIDE;
}

static __always_inline void fst_send(struct fst_pending *p, __u16 op)
{
	struct fst_event *e = fst_event_of(p);
	__u32 size = sizeof(struct fst_event) + (e->path_len & (FST_PATH_MAX - 1)) +
		     (e->old_path_len & (FST_PATH_MAX - 1));
	e->op = op;
	e->hdr.size = size;
	fst_output_adaptive_or_count(e, size, op);
}

/* Tells user space which directory `fd` names (see struct fst_dirfd). */
static __always_inline void fst_send_dirfd(__u32 tgid, __s32 fd, __s32 dirfd, __u64 user_path)
{
	__u32 zero = 0;
	struct fst_dirfd_record *r = bpf_map_lookup_elem(&fst_dirfd_scratch, &zero);
	if (!r)
		return;
	struct fst_dirfd *d = (struct fst_dirfd *)r->bytes;
	long n = 1;
	if (user_path) {
		n = bpf_probe_read_user_str(r->bytes + sizeof(struct fst_dirfd), FST_PATH_MAX, (const void *)user_path);
		if (n < 1)
			return;
	}
	d->pid = tgid;
	d->fd = fd;
	d->dirfd = dirfd;
	d->path_len = (n - 1) & (FST_PATH_MAX - 1);
	d->_pad = 0;
	__u32 size = sizeof(struct fst_dirfd) + d->path_len;
	fst_fill_header(&d->hdr, FST_REC_DIRFD, size);
	fst_output_adaptive_or_count(d, size, 0);
}

static __always_inline void fst_remember_dir(__u32 tgid, __s32 fd, __u32 scope)
{
	struct fst_tp_fd_key key = {.tgid = tgid, .fd = fd};
	if (scope == FST_INSIDE || scope == FST_OUTSIDE) {
		fst_raise_fd_ceiling(tgid, fd);
		bpf_map_update_elem(&fst_dir_fds, &key, &scope, BPF_ANY);
	} else
		bpf_map_delete_elem(&fst_dir_fds, &key);
}

static __always_inline void fst_finish_open(struct fst_pending *p, long ret)
{
	struct fst_event *e = fst_event_of(p);
	__u32 flags = p->open_flags;

	if (ret < 0) {
		if (!fst_report_failed)
			return;
		e->error = ret;
		if ((flags & FST_O_CREAT) && fst_wanted(FST_OP_CREATE))
			fst_send(p, FST_OP_CREATE);
		else if (fst_wanted(FST_OP_OPEN))
			fst_send(p, FST_OP_OPEN);
		return;
	}
	if (flags & (FST_O_DIRECTORY | FST_O_PATH)) {
		/* Strict scope for a directory kept as a base: recomputed with ".." in mind. */
		__u32 scope = fst_path_scope_of(p, 0, e->path_len & (FST_PATH_MAX - 1), e->dirfd, 1);
		fst_remember_dir(e->actor.pid, ret, scope);
		fst_send_dirfd(e->actor.pid, ret, e->dirfd, p->user_path);
	}
	/* O_CREAT may have opened an existing file; user space checks the birth time. */
	if ((flags & FST_O_CREAT) && fst_wanted(FST_OP_CREATE))
		fst_send(p, FST_OP_CREATE);
	if (fst_wanted(FST_OP_OPEN))
		fst_send(p, FST_OP_OPEN);
	if ((flags & (FST_O_WRONLY | FST_O_RDWR)) && fst_wanted(FST_OP_MODIFY)) {
		struct fst_tp_fd_key key = {.tgid = e->actor.pid, .fd = ret};
		struct fst_open_file file = {.refs = 1};
		e->op = FST_OP_MODIFY;
		p->open_id = (bpf_ktime_get_ns() << 6) | (bpf_get_smp_processor_id() & 63);
		/* Either map full: this file's modify would never be reported. */
		if (bpf_map_update_elem(&fst_open_files, &p->open_id, &file, BPF_ANY) == 0) {
			fst_raise_fd_ceiling(e->actor.pid, ret);
			if (bpf_map_update_elem(&fst_write_fds, &key, p, BPF_ANY))
				fst_count_map_full(FST_OP_MODIFY);
		} else {
			fst_count_map_full(FST_OP_MODIFY);
		}
	}
}

static __always_inline __u64 fst_bump_cwd_epoch(__u32 tgid)
{
	__u64 one = 1;
	__u64 *epoch = bpf_map_lookup_elem(&fst_cwd_epoch, &tgid);
	if (epoch)
		return __sync_add_and_fetch(epoch, 1);
	bpf_map_update_elem(&fst_cwd_epoch, &tgid, &one, BPF_ANY);
	return 1;
}

/* After a chdir: the kernel places the new cwd when it can (an absolute path, or a
 * descent from a cwd inside a tree), else asks user space to look. */
static __always_inline void fst_finish_chdir(struct fst_pending *p, long ret)
{
	struct fst_event *e = fst_event_of(p);
	__u32 tgid = e->actor.pid;

	if (ret != 0)
		return;
	/* Computed against the old cwd, before the epoch moves. */
	int scope = fst_path_scope_of(p, 0, e->path_len & (FST_PATH_MAX - 1), FST_AT_FDCWD, 1);
	__u64 epoch = fst_bump_cwd_epoch(tgid);
	fst_send_dirfd(tgid, FST_AT_FDCWD, FST_AT_FDCWD, p->user_path);
	if (scope == FST_UNDECIDED) {
		bpf_map_push_elem(&fst_cwd_unknown, &tgid, BPF_EXIST);
		return;
	}
	struct fst_tp_cwd_state state = {.epoch = epoch, .scope = scope};
	bpf_map_update_elem(&fst_cwd_state, &tgid, &state, BPF_ANY);
}

/* The in-flight record of this thread's syscall, or NULL. */
static __always_inline struct fst_pending *fst_in_flight_of(__u32 tid)
{
	return bpf_map_lookup_elem(&fst_in_flight, &tid);
}

/* sys_exit of a plain operation: report it if it succeeded (or failures are wanted). */
static __always_inline int fst_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct fst_pending *p = fst_in_flight_of(tid);

	if (!p)
		return 0;
	struct fst_event *e = fst_event_of(p);
	if (ret >= 0 || fst_report_failed) {
		e->error = ret < 0 ? ret : 0;
		fst_send(p, e->op);
	}
	bpf_map_delete_elem(&fst_in_flight, &tid);
	return 0;
}

static __always_inline int fst_exit_open(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct fst_pending *p = fst_in_flight_of(tid);

	if (!p) {
		/* A directory outside every tree: remembered so paths below it stay in the kernel. */
		struct fst_open_scope *dir = bpf_map_lookup_elem(&fst_dir_open_in_flight, &tid);
		if (dir) {
			if (ret >= 0)
				fst_remember_dir(pid_tgid >> 32, ret, dir->scope);
			bpf_map_delete_elem(&fst_dir_open_in_flight, &tid);
		}
		return 0;
	}
	fst_finish_open(p, ret);
	bpf_map_delete_elem(&fst_in_flight, &tid);
	return 0;
}

static __always_inline int fst_exit_chdir(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct fst_pending *p = fst_in_flight_of(tid);

	if (!p)
		return 0;
	fst_finish_chdir(p, ret);
	bpf_map_delete_elem(&fst_in_flight, &tid);
	return 0;
}

/* ---- syscall entries (syscall_args.bpf.h maps each syscall to one of these) ---- */

static __always_inline int fst_sys_open(__s32 dirfd, __u64 path, __u32 flags)
{
	int wants_write = (flags & (FST_O_WRONLY | FST_O_RDWR)) && fst_wanted(FST_OP_MODIFY);
	int wants_create = (flags & FST_O_CREAT) && fst_wanted(FST_OP_CREATE);
	int is_dir = flags & (FST_O_DIRECTORY | FST_O_PATH);
	/* Read-only opens of files are most syscalls of a system: gone before any copy. */
	if (!wants_write && !wants_create && !is_dir && !fst_wanted(FST_OP_OPEN))
		return 0;
	struct fst_pending *p = fst_begin(FST_OP_OPEN);
	if (!p)
		return 0;
	p->open_flags = flags;
	int scope = fst_add_path(p, dirfd, path);
	if (is_dir && (scope == FST_OUTSIDE || scope == FST_ANCESTOR)) {
		/* Only where it lies is needed at exit (O_PATH, O_DIRECTORY reject O_CREAT). */
		struct fst_open_scope dir = {.scope = fst_path_scope_of(p, 0, fst_event_of(p)->path_len, dirfd, 1),
					     .flags = flags};
		__u32 tid = (__u32)bpf_get_current_pid_tgid();
		bpf_map_update_elem(&fst_dir_open_in_flight, &tid, &dir, BPF_ANY);
		return 0;
	}
	return fst_hold(p, scope);
}

static __always_inline int fst_sys_path(__u16 op, __s32 dirfd, __u64 path)
{
	if (!fst_wanted(op))
		return 0;
	struct fst_pending *p = fst_begin(op);
	if (!p)
		return 0;
	if (op == FST_OP_MKDIR || op == FST_OP_RMDIR)
		fst_event_of(p)->flags |= FST_EF_IS_DIR;
	return fst_hold(p, fst_add_path(p, dirfd, path));
}

static __always_inline int fst_sys_fd(__u16 op, __s32 fd)
{
	if (!fst_wanted(op))
		return 0;
	struct fst_pending *p = fst_begin(op);
	if (!p)
		return 0;
	return fst_hold(p, fst_add_fd(p, fd));
}

static __always_inline int fst_sys_chmod(__s32 dirfd, __u64 path, __u32 mode, int by_fd)
{
	struct fst_pending *p = fst_wanted(FST_OP_CHMOD) ? fst_begin(FST_OP_CHMOD) : NULL;
	if (!p)
		return 0;
	int scope = by_fd ? fst_add_fd(p, dirfd) : fst_add_path(p, dirfd, path);
	struct fst_event *e = fst_event_of(p);
	e->new_mode = mode & 07777;
	e->flags |= FST_EF_HAS_NEW_MODE;
	return fst_hold(p, scope);
}

static __always_inline int fst_sys_chown(__s32 dirfd, __u64 path, __u32 uid, __u32 gid, int by_fd)
{
	struct fst_pending *p = fst_wanted(FST_OP_CHOWN) ? fst_begin(FST_OP_CHOWN) : NULL;
	if (!p)
		return 0;
	int scope = by_fd ? fst_add_fd(p, dirfd) : fst_add_path(p, dirfd, path);
	struct fst_event *e = fst_event_of(p);
	/* -1 keeps the current owner or group: not a new value. */
	if (uid != (__u32)-1) {
		e->new_uid = uid;
		e->flags |= FST_EF_HAS_NEW_UID;
	}
	if (gid != (__u32)-1) {
		e->new_gid = gid;
		e->flags |= FST_EF_HAS_NEW_GID;
	}
	return fst_hold(p, scope);
}

/* rename/link: `path` is the new name, `old_path` the existing one. */
static __always_inline int fst_sys_two(__u16 op, __s32 old_dirfd, __u64 old_path, __s32 new_dirfd, __u64 new_path)
{
	if (!fst_wanted(op))
		return 0;
	struct fst_pending *p = fst_begin(op);
	if (!p)
		return 0;
	int new_scope = fst_add_path(p, new_dirfd, new_path);
	if (new_scope < 0)
		return 0;
	int old_scope = fst_add_old_path(p, old_dirfd, old_path);
	if (old_scope < 0)
		return 0;
	if (op == FST_OP_LINK) {
		/* The event names the new link only; its source is not part of the contract. */
		struct fst_event *e = fst_event_of(p);
		e->old_path_len = 0;
		e->old_path_enc = FST_PATH_NONE;
	}
	return fst_hold(p, fst_either(new_scope, old_scope));
}

/* ---- syscall exits: one shape for all ---- */

#define FST_EXIT_WITH(name, finish)                                     \
	SEC("tracepoint/syscalls/sys_exit_" #name)                      \
	int exit_##name(struct fst_syscall_exit_args *ctx) { return finish(ctx->ret); }
#define FST_EXIT(name) FST_EXIT_WITH(name, fst_exit)

FST_EXIT_WITH(open, fst_exit_open)
FST_EXIT_WITH(openat, fst_exit_open)
FST_EXIT_WITH(openat2, fst_exit_open)
FST_EXIT_WITH(creat, fst_exit_open)
FST_EXIT(mkdir)
FST_EXIT(mkdirat)
FST_EXIT(unlink)
FST_EXIT(unlinkat)
FST_EXIT(rmdir)
FST_EXIT(truncate)
FST_EXIT(ftruncate)
FST_EXIT(symlink)
FST_EXIT(symlinkat)
FST_EXIT(setxattr)
FST_EXIT(lsetxattr)
FST_EXIT(fsetxattr)
FST_EXIT(removexattr)
FST_EXIT(lremovexattr)
FST_EXIT(fremovexattr)
FST_EXIT(setxattrat)
FST_EXIT(removexattrat)
FST_EXIT(chmod)
FST_EXIT(fchmod)
FST_EXIT(fchmodat)
FST_EXIT(fchmodat2)
FST_EXIT(chown)
FST_EXIT(lchown)
FST_EXIT(fchown)
FST_EXIT(fchownat)
FST_EXIT(rename)
FST_EXIT(renameat)
FST_EXIT(renameat2)
FST_EXIT(link)
FST_EXIT(linkat)

/* ---- modify: one per open-write-close ---- */

static __always_inline int fst_sys_write(__s32 fd)
{
	struct fst_tp_fd_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd};
	struct fst_pending *p = bpf_map_lookup_elem(&fst_write_fds, &key);
	if (!p)
		return 0;
	struct fst_open_file *file = bpf_map_lookup_elem(&fst_open_files, &p->open_id);
	if (file)
		file->dirty = 1;
	return 0;
}

static __always_inline void fst_send_modify(struct fst_pending *p)
{
	struct fst_event *e = fst_event_of(p);
	/* The closer, at the close: not the opener at the open. */
	e->hdr.ktime_ns = bpf_ktime_get_boot_ns();
	fst_fill_actor(&e->actor);
	e->error = 0;
	fst_send(p, FST_OP_MODIFY);
}

/* One fd of a file open for writing is gone: the last one sends the modify, if written. */
static __always_inline void fst_release_file(struct fst_pending *p)
{
	struct fst_open_file *file = bpf_map_lookup_elem(&fst_open_files, &p->open_id);
	if (!file)
		return;
	/* Not atomic (clang 14 has no fetch-and-sub for BPF v1): two threads closing
	 * dups of one file at the same instant could miss or double a modify. */
	if (file->refs > 1) {
		file->refs -= 1;
		return;
	}
	if (file->dirty)
		fst_send_modify(p);
	bpf_map_delete_elem(&fst_open_files, &p->open_id);
}

/* The fd is gone (close, or replaced by dup2). */
static __always_inline void fst_forget_fd(__u32 tgid, __s32 fd)
{
	struct fst_tp_fd_key key = {.tgid = tgid, .fd = fd};
	struct fst_pending *p = bpf_map_lookup_elem(&fst_write_fds, &key);
	if (p) {
		fst_release_file(p);
		bpf_map_delete_elem(&fst_write_fds, &key);
	}
	bpf_map_delete_elem(&fst_dir_fds, &key);
}

static __always_inline int fst_sys_close(__s32 fd)
{
	fst_forget_fd(bpf_get_current_pid_tgid() >> 32, fd);
	return 0;
}

/*
 * dup, dup2, dup3, fcntl(F_DUPFD*): the new fd names the same open file, which
 * gets its modify when the last of its fds closes.
 */
static __always_inline int fst_sys_dup(__s32 old_fd, __s32 new_fd)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct fst_tp_fd_key old_key = {.tgid = pid_tgid >> 32, .fd = old_fd};
	struct fst_tp_fd_key new_key = {.tgid = pid_tgid >> 32, .fd = new_fd};

	if (!bpf_map_lookup_elem(&fst_write_fds, &old_key) && !bpf_map_lookup_elem(&fst_dir_fds, &old_key) &&
	    (new_fd < 0 || (!bpf_map_lookup_elem(&fst_write_fds, &new_key) &&
			    !bpf_map_lookup_elem(&fst_dir_fds, &new_key))))
		return 0;
	struct fst_dup_args args = {.old_fd = old_fd, .new_fd = new_fd};
	bpf_map_update_elem(&fst_dup_in_flight, &tid, &args, BPF_ANY);
	return 0;
}

static __always_inline int fst_exit_dup(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	__u32 tgid = pid_tgid >> 32;
	struct fst_dup_args *args = bpf_map_lookup_elem(&fst_dup_in_flight, &tid);

	if (!args)
		return 0;
	__s32 old_fd = args->old_fd;
	bpf_map_delete_elem(&fst_dup_in_flight, &tid);
	if (ret < 0 || ret == old_fd)
		return 0;
	fst_forget_fd(tgid, ret); /* dup2 closed what the new fd named */
	fst_raise_fd_ceiling(tgid, ret);
	struct fst_tp_fd_key old_key = {.tgid = tgid, .fd = old_fd};
	struct fst_tp_fd_key new_key = {.tgid = tgid, .fd = ret};
	struct fst_pending *written = bpf_map_lookup_elem(&fst_write_fds, &old_key);
	if (written) {
		struct fst_open_file *file = bpf_map_lookup_elem(&fst_open_files, &written->open_id);
		if (file && bpf_map_update_elem(&fst_write_fds, &new_key, written, BPF_ANY) == 0)
			__sync_fetch_and_add(&file->refs, 1); /* xadd, no fetch: BPF v1 */
		else if (file)
			fst_count_map_full(FST_OP_MODIFY); /* a write through the new fd goes unseen */
	}
	__u32 *dir = bpf_map_lookup_elem(&fst_dir_fds, &old_key);
	if (dir) {
		__u32 scope = *dir;
		bpf_map_update_elem(&fst_dir_fds, &new_key, &scope, BPF_ANY);
		if (scope == FST_INSIDE)
			fst_send_dirfd(tgid, ret, old_fd, 0);
	}
	return 0;
}

#define FST_DUP_EXIT(name)                                              \
	SEC("tracepoint/syscalls/sys_exit_" #name)                      \
	int exit_##name(struct fst_syscall_exit_args *ctx) { return fst_exit_dup(ctx->ret); }

FST_DUP_EXIT(dup)
FST_DUP_EXIT(dup2)
FST_DUP_EXIT(dup3)
FST_DUP_EXIT(fcntl)

#define FST_SYS_PREFIX enter_
#include "backend/bpf/tracepoint/syscall_args.bpf.h"

static long fst_close_on_exit(struct bpf_map *map, struct fst_tp_fd_key *key, struct fst_pending *p, __u32 *tgid)
{
	if (key->tgid != *tgid)
		return 0;
	fst_release_file(p);
	bpf_map_delete_elem(map, key);
	return 0;
}

static long fst_close_fd_on_exit(__u32 fd, __u32 *tgid)
{
	fst_forget_fd(*tgid, (__s32)fd);
	return 0;
}

static long fst_forget_dir_fd(__u32 fd, __u32 *tgid)
{
	struct fst_tp_fd_key key = {.tgid = *tgid, .fd = (__s32)fd};
	bpf_map_delete_elem(&fst_dir_fds, &key);
	return 0;
}

/* The fds of `tgid` that may have entries, or -1: scan the maps instead. */
static __always_inline long fst_fd_ceiling_of(__u32 tgid)
{
	__u32 zero = 0;
	__u32 *lost = bpf_map_lookup_elem(&fst_fd_ceiling_lost, &zero);
	if (lost && *lost)
		return -1;
	__u32 *ceiling = bpf_map_lookup_elem(&fst_fd_ceiling, &tgid);
	if (!ceiling)
		return 0;
	return *ceiling <= FST_FD_WALK_MAX ? (long)*ceiling : -1;
}

/* ---- process lifetime: cwd state and open files ---- */

static long fst_forget_dir_of(struct bpf_map *map, struct fst_tp_fd_key *key, __u32 *scope, __u32 *tgid)
{
	if (key->tgid == *tgid)
		bpf_map_delete_elem(map, key);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_chdir")
int enter_chdir(struct fst_syscall_enter_args *ctx)
{
	struct fst_pending *p = fst_begin(0);
	if (!p)
		return 0;
	if (fst_add_path(p, FST_AT_FDCWD, ARG(0)) < 0)
		return 0;
	fst_fill_actor(&fst_event_of(p)->actor);
	__u32 tid = fst_event_of(p)->actor.tid;
	bpf_map_update_elem(&fst_in_flight, &tid, p, BPF_ANY);
	return 0;
}

FST_EXIT_WITH(chdir, fst_exit_chdir)

SEC("tracepoint/syscalls/sys_enter_fchdir")
int enter_fchdir(struct fst_syscall_enter_args *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct fst_dup_args args = {.old_fd = DIRFD(0), .new_fd = FST_AT_FDCWD};
	if (!fst_is_agent())
		bpf_map_update_elem(&fst_dup_in_flight, &tid, &args, BPF_ANY);
	return 0;
}

/* fchdir: the new cwd is where the fd's directory lies, when the kernel knows it. */
SEC("tracepoint/syscalls/sys_exit_fchdir")
int exit_fchdir(struct fst_syscall_exit_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid, tgid = pid_tgid >> 32;
	struct fst_dup_args *args = bpf_map_lookup_elem(&fst_dup_in_flight, &tid);
	if (!args)
		return 0;
	__s32 fd = args->old_fd;
	bpf_map_delete_elem(&fst_dup_in_flight, &tid);
	if (ctx->ret != 0)
		return 0;
	__u64 epoch = fst_bump_cwd_epoch(tgid);
	fst_send_dirfd(tgid, FST_AT_FDCWD, fd, 0);
	struct fst_tp_fd_key key = {.tgid = tgid, .fd = fd};
	__u32 *scope = bpf_map_lookup_elem(&fst_dir_fds, &key);
	if (!scope) {
		bpf_map_push_elem(&fst_cwd_unknown, &tgid, BPF_EXIST);
		return 0;
	}
	struct fst_tp_cwd_state state = {.epoch = epoch, .scope = *scope};
	bpf_map_update_elem(&fst_cwd_state, &tgid, &state, BPF_ANY);
	return 0;
}

struct fst_fork_args_fixed_comm {
	__u8 before[44];
	__s32 child_pid;
};

struct fst_fork_args_data_loc_comm {
	__u8 before[20];
	__s32 child_pid;
};

SEC("tracepoint/sched/sched_process_fork")
int process_fork(void *ctx)
{
	__s32 child;
	/* ctx reads need constant offsets (kernel reads are refused under lockdown): the
	 * known layouts, one chosen at load. The tracepoint runs in the parent. */
	if (fst_fork_child_pid_offset == 44) {
		child = ((struct fst_fork_args_fixed_comm *)ctx)->child_pid;
		asm volatile("" : "+r"(child)); /* keep the two constant-offset loads apart */
	} else if (fst_fork_child_pid_offset == 20) {
		child = ((struct fst_fork_args_data_loc_comm *)ctx)->child_pid;
		asm volatile("" : "+r"(child));
	} else {
		return 0;
	}
	__u32 parent_tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 child_tgid = child;
	struct fst_tp_cwd_state *state = bpf_map_lookup_elem(&fst_cwd_state, &parent_tgid);
	__u64 *epoch = bpf_map_lookup_elem(&fst_cwd_epoch, &parent_tgid);
	if (state)
		bpf_map_update_elem(&fst_cwd_state, &child_tgid, state, BPF_ANY);
	else
		bpf_map_delete_elem(&fst_cwd_state, &child_tgid);
	if (epoch)
		bpf_map_update_elem(&fst_cwd_epoch, &child_tgid, epoch, BPF_ANY);
	else
		bpf_map_delete_elem(&fst_cwd_epoch, &child_tgid);
	bpf_map_update_elem(&fst_parent, &child_tgid, &parent_tgid, BPF_ANY);
	if (parent_tgid != fst_agent_tgid)
		fst_send_dirfd(child_tgid, FST_DIRFD_FORKED, parent_tgid, 0);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int process_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if ((__u32)pid_tgid != tgid)
		return 0; /* a thread: the process and its files live on */
	bpf_map_delete_elem(&fst_cwd_state, &tgid);
	bpf_map_delete_elem(&fst_cwd_epoch, &tgid);
	/* fst_parent stays (an LRU map): user space may still need it for this process. */
	fst_send_dirfd(tgid, FST_DIRFD_EXITED, FST_DIRFD_EXITED, 0);
	/* Exit closes every fd without a close syscall. */
	long ceiling = fst_fd_ceiling_of(tgid);
	if (ceiling > 0) {
		bpf_loop(ceiling, fst_close_fd_on_exit, &tgid, 0);
	} else if (ceiling < 0) {
		bpf_for_each_map_elem(&fst_write_fds, fst_close_on_exit, &tgid, 0);
		bpf_for_each_map_elem(&fst_dir_fds, fst_forget_dir_of, &tgid, 0);
	}
	bpf_map_delete_elem(&fst_fd_ceiling, &tgid);
	return 0;
}

/* exec closes O_CLOEXEC fds without a close syscall: forget the process's directory
 * fds (its later dirfd-relative paths go to user space, which reads /proc). */
SEC("tracepoint/sched/sched_process_exec")
int process_exec_forget_dirs(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	long ceiling = fst_fd_ceiling_of(tgid);
	if (ceiling > 0)
		bpf_loop(ceiling, fst_forget_dir_fd, &tgid, 0);
	else if (ceiling < 0)
		bpf_for_each_map_elem(&fst_dir_fds, fst_forget_dir_of, &tgid, 0);
	return 0;
}
