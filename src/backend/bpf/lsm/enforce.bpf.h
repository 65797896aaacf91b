/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guard enforcement (`fstrail guard` with enforce = true): the bpf-lsm hooks deny,
 * with -EPERM, an operation by a non-exempt caller that would break the ownership or
 * mode invariant of the innermost guarded tree holding its object, and report the
 * denial (FST_EF_DENIED, error -EPERM) whatever the other settings.
 *
 * Rules are keyed by the guarded root's (st_dev, st_ino) in fst_guard_rules; one
 * bounded walk up d_parent (crossing mounts, like the capture walk) stops at the first
 * ancestor in the map: the innermost rule. Exempt: the caller's real uid or its login
 * uid is listed. Root is not exempt unless listed.
 */
#ifndef FSTRAIL_ENFORCE_BPF_H
#define FSTRAIL_ENFORCE_BPF_H

#include "backend/bpf/common/fs_capture.bpf.h"
#include "fstrail/guard_map.h"

#define FST_EPERM 1
#define FST_S_ISGID 02000
#define FST_S_IFREG 0100000
#define FST_S_IFLNK 0120000
#define FST_RENAME_EXCHANGE (1 << 1)
#define FST_NO_ID 0xffffffffu

/* Set by user space before load: some guarded tree enforces. */
const volatile __u32 fst_enforce = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FST_GUARD_MAX_RULES);
	__type(key, struct fst_root_key);
	__type(value, struct fst_guard_rule);
} fst_guard_rules SEC(".maps");

struct fst_guard_walk {
	struct dentry *dentry;
	struct mount *mnt;
	struct fst_root_key key;
	__u32 found;
};

static long fst_guard_step(__u32 index, struct fst_guard_walk *w)
{
	struct dentry *d = w->dentry, *parent;
	struct mount *mnt = w->mnt, *mnt_parent;
	struct inode *inode = BPF_CORE_READ(d, d_inode);

	if (inode) {
		struct fst_root_key key = {
			.dev = fst_encode_dev(BPF_CORE_READ(inode, i_sb, s_dev)),
			.ino = BPF_CORE_READ(inode, i_ino),
		};
		if (bpf_map_lookup_elem(&fst_guard_rules, &key)) {
			w->key = key;
			w->found = 1;
			return 1;
		}
	}
	if (d == BPF_CORE_READ(mnt, mnt.mnt_root)) {
		mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
		if (mnt_parent == mnt)
			return 1;
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = mnt_parent;
		return 0;
	}
	parent = BPF_CORE_READ(d, d_parent);
	if (parent == d)
		return 1;
	w->dentry = parent;
	return 0;
}

/* The key of the innermost guarded tree holding dentry (itself included); 0: none. */
static __always_inline int fst_guard_find(struct dentry *dentry, struct mount *mnt, struct fst_root_key *key)
{
	struct fst_guard_walk w = { .dentry = dentry, .mnt = mnt };

	bpf_loop(FST_WALK_STEPS, fst_guard_step, &w, 0);
	*key = w.key;
	return w.found;
}

static __always_inline int fst_guard_exempt(const struct fst_guard_rule *rule)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 uid = (__u32)bpf_get_current_uid_gid(); /* the real uid */
	__u32 loginuid = FST_NO_ID;
	__u32 count = rule->exempt_count;

	if (bpf_core_field_exists(task->loginuid))
		loginuid = BPF_CORE_READ(task, loginuid.val);
	for (__u32 i = 0; i < FST_GUARD_MAX_EXEMPT; i++) {
		if (i >= count)
			break;
		if (rule->exempt[i] == uid || (loginuid != FST_NO_ID && rule->exempt[i] == loginuid))
			return 1;
	}
	return 0;
}

/* The enforcing rule that governs dentry for the current caller, or NULL (no rule, an
 * alert-only rule, or an exempt caller). */
static __always_inline struct fst_guard_rule *fst_enforcing_rule(struct dentry *dentry, struct mount *mnt,
								struct fst_root_key *key)
{
	struct fst_guard_rule *rule;

	if (!fst_enforce || !fst_guard_find(dentry, mnt, key))
		return 0;
	rule = bpf_map_lookup_elem(&fst_guard_rules, key);
	if (!rule || !rule->enforce || fst_guard_exempt(rule))
		return 0;
	return rule;
}

static __always_inline __u32 fst_allowed_mode(const struct fst_guard_rule *rule, __u32 mode)
{
	return (mode & FST_S_IFMT) == FST_S_IFDIR ? rule->dir_mode : rule->file_mode;
}

/* Whether an object with this owner, group and mode breaks the rule (symlinks have no mode). */
static __always_inline int fst_breaks_rule(const struct fst_guard_rule *rule, __u32 uid, __u32 gid, __u32 mode)
{
	if (uid != rule->owner || gid != rule->group)
		return 1;
	if ((mode & FST_S_IFMT) == FST_S_IFLNK)
		return 0;
	return (mode & 07777 & ~fst_allowed_mode(rule, mode)) != 0;
}

/* Sends the denial of `op` on dentry: `new_*` is the state the operation would have
 * made (FST_NO_ID: unchanged/unknown), the old state comes from `object` (may be NULL). */
static __always_inline void fst_report_denial(__u32 op, struct dentry *dentry, struct mount *mnt,
					      struct inode *object, __u32 new_uid, __u32 new_gid,
					      __u32 new_mode, struct dentry *old_dentry,
					      struct mount *old_mnt)
{
	struct fst_record *r = fst_scratch_record(op);

	if (!r)
		return;
	if (object) {
		fst_set_inode(r, object);
		r->ev.old_mode = BPF_CORE_READ(object, i_mode);
		r->ev.old_uid = BPF_CORE_READ(object, i_uid.val);
		r->ev.old_gid = BPF_CORE_READ(object, i_gid.val);
		r->ev.flags |= FST_EF_HAS_OLD_MODE | FST_EF_HAS_OLD_OWNER;
	}
	if ((new_mode & FST_S_IFMT) == FST_S_IFDIR)
		r->ev.flags |= FST_EF_IS_DIR;
	if (new_mode) {
		r->ev.new_mode = new_mode;
		r->ev.flags |= FST_EF_HAS_NEW_MODE;
	}
	if (new_uid != FST_NO_ID) {
		r->ev.new_uid = new_uid;
		r->ev.flags |= FST_EF_HAS_NEW_UID;
	}
	if (new_gid != FST_NO_ID) {
		r->ev.new_gid = new_gid;
		r->ev.flags |= FST_EF_HAS_NEW_GID;
	}
	r->ev.flags |= FST_EF_DENIED;
	fst_record_path(r, dentry, mnt);
	if (old_dentry)
		fst_record_old_path(r, old_dentry, old_mnt);
	fst_submit(r, -FST_EPERM);
}

/* create, mkdir, mknod, symlink: the new object belongs to the caller's fsuid, and to
 * its fsgid or, under a set-group-ID directory, the directory's group. */
static __always_inline int fst_enforce_new_object(__u32 op, const struct path *dir, struct dentry *dentry,
						  __u32 mode)
{
	struct mount *mnt = fst_real_mount(BPF_CORE_READ(dir, mnt));
	struct fst_root_key key;
	struct fst_guard_rule *rule = fst_enforcing_rule(dentry, mnt, &key);
	struct task_struct *task;
	struct inode *dir_inode;
	__u32 uid, gid;

	if (!rule)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	uid = BPF_CORE_READ(task, cred, fsuid.val);
	gid = BPF_CORE_READ(task, cred, fsgid.val);
	dir_inode = BPF_CORE_READ(dir, dentry, d_inode);
	if (BPF_CORE_READ(dir_inode, i_mode) & FST_S_ISGID)
		gid = BPF_CORE_READ(dir_inode, i_gid.val);
	if (uid == rule->owner && gid == rule->group)
		return 0;
	fst_report_denial(op, dentry, mnt, 0, uid, gid, mode, 0, 0);
	return -FST_EPERM;
}

static __always_inline int fst_enforce_chmod(const struct path *path, __u32 mode)
{
	struct dentry *dentry = BPF_CORE_READ(path, dentry);
	struct mount *mnt = fst_real_mount(BPF_CORE_READ(path, mnt));
	struct fst_root_key key;
	struct fst_guard_rule *rule = fst_enforcing_rule(dentry, mnt, &key);
	struct inode *inode;
	__u32 new_mode;

	if (!rule)
		return 0;
	inode = BPF_CORE_READ(dentry, d_inode);
	new_mode = (mode & 07777) | (BPF_CORE_READ(inode, i_mode) & FST_S_IFMT);
	if (!(new_mode & 07777 & ~fst_allowed_mode(rule, new_mode)))
		return 0;
	fst_report_denial(FST_OP_CHMOD, dentry, mnt, inode, FST_NO_ID, FST_NO_ID, new_mode, 0, 0);
	return -FST_EPERM;
}

static __always_inline int fst_enforce_chown(const struct path *path, __u32 uid, __u32 gid)
{
	struct dentry *dentry = BPF_CORE_READ(path, dentry);
	struct mount *mnt = fst_real_mount(BPF_CORE_READ(path, mnt));
	struct fst_root_key key;
	struct fst_guard_rule *rule = fst_enforcing_rule(dentry, mnt, &key);

	if (!rule)
		return 0;
	if ((uid == FST_NO_ID || uid == rule->owner) && (gid == FST_NO_ID || gid == rule->group))
		return 0;
	fst_report_denial(FST_OP_CHOWN, dentry, mnt, BPF_CORE_READ(dentry, d_inode), uid, gid, 0, 0, 0);
	return -FST_EPERM;
}

/* An existing object gets a name under `to` (rename, link): denied when it breaks the
 * rule there and did not already live under that same rule (moving a pre-existing
 * violation around inside its tree is not a new one). */
static __always_inline int fst_brings_violation(struct dentry *object, struct mount *from_mnt,
						struct dentry *to, struct mount *to_mnt)
{
	struct fst_root_key to_key, from_key;
	struct fst_guard_rule *rule = fst_enforcing_rule(to, to_mnt, &to_key);
	struct inode *inode = BPF_CORE_READ(object, d_inode);

	if (!rule || !inode)
		return 0;
	if (!fst_breaks_rule(rule, BPF_CORE_READ(inode, i_uid.val), BPF_CORE_READ(inode, i_gid.val),
			     BPF_CORE_READ(inode, i_mode)))
		return 0;
	if (!fst_guard_find(object, from_mnt, &from_key))
		return 1;
	return from_key.dev != to_key.dev || from_key.ino != to_key.ino;
}

static __always_inline int fst_enforce_rename(struct dentry *old_dentry, struct mount *old_mnt,
					      struct dentry *new_dentry, struct mount *new_mnt,
					      unsigned int flags)
{
	struct inode *inode;

	if (!fst_enforce)
		return 0;
	/* the new name's parent decides: new_dentry may be a file about to be replaced */
	if (fst_brings_violation(old_dentry, old_mnt, BPF_CORE_READ(new_dentry, d_parent), new_mnt)) {
		inode = BPF_CORE_READ(old_dentry, d_inode);
		fst_report_denial(FST_OP_RENAME, new_dentry, new_mnt, inode, FST_NO_ID, FST_NO_ID, 0,
				  old_dentry, old_mnt);
		return -FST_EPERM;
	}
	if ((flags & FST_RENAME_EXCHANGE) &&
	    fst_brings_violation(new_dentry, new_mnt, BPF_CORE_READ(old_dentry, d_parent), old_mnt)) {
		inode = BPF_CORE_READ(new_dentry, d_inode);
		fst_report_denial(FST_OP_RENAME, old_dentry, old_mnt, inode, FST_NO_ID, FST_NO_ID, 0,
				  new_dentry, new_mnt);
		return -FST_EPERM;
	}
	return 0;
}

static __always_inline int fst_enforce_link(struct dentry *old_dentry, const struct path *new_dir,
					    struct dentry *new_dentry)
{
	struct mount *mnt = fst_real_mount(BPF_CORE_READ(new_dir, mnt));

	if (!fst_enforce)
		return 0;
	/* a hard link stays on its mount: the source is under the same mount */
	if (!fst_brings_violation(old_dentry, mnt, new_dentry, mnt))
		return 0;
	fst_report_denial(FST_OP_LINK, new_dentry, mnt, BPF_CORE_READ(old_dentry, d_inode), FST_NO_ID,
			  FST_NO_ID, 0, 0, 0);
	return -FST_EPERM;
}

#endif /* FSTRAIL_ENFORCE_BPF_H */
