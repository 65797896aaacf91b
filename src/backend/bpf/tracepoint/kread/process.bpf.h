/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bpf-tracepoint, kernel-read mode: a process's lifetime. Exit and exec close fds
 * without a close call (their modifies go now) and end what user space knows of the
 * process's exe.
 */
#ifndef FSTRAIL_KREAD_PROCESS_BPF_H
#define FSTRAIL_KREAD_PROCESS_BPF_H

#include "backend/bpf/tracepoint/kread/fd_table.bpf.h"

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

#endif
