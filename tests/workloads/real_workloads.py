#!/usr/bin/env python3
"""Real workloads against one backend, every event judged against the script's ground truth.

Runs `fstrail watch --json --backend B ROOT`, then real tools (git clone --local, tar x of
hostile names, cp -a, rsync -a as root and as nobody, sed -i, mv/ln/ln -s/setfattr/truncate/
rm -rf, an fd-walk + fchdir process, chroot inside unshare -m, a bind mount written through,
a symlinked directory, chown -R/chmod -R behind a login uid, 300 short-lived writers, a rename
storm, a subdirectory renamed and recreated, a tmpfs mounted in the tree, a path longer than
PATH_MAX, the watched root renamed), each in its own subdirectory of ROOT, stops fstrail with
SIGINT and compares every event with what the script knows:

- wrong path: a path (or old_path) that did not exist during the step: outside ROOT, or under
  ROOT but neither in the step's trees before/after, nor named by the step (temp names,
  intermediate names), nor the same path written through a symbolic link that existed.
- wrong actor field: a non-null uid, euid, loginuid, comm, exe, ppid, pid that differs from
  the truth. Processes the script started itself (their pids are known) are checked on every
  field; helpers it cannot know (git's, rsync's, a shell's children) on uid, euid, loginuid.
- counted, not failed: null actor fields, missing events (an entry created, written, removed,
  chmod'ed, chown'ed or xattr'ed per the trees before/after with no matching event; renames
  of the storm), duplicates, and what fstrail reports as lost.

Usage: real_workloads.py FSTRAIL --backend B [--fstrail-opts "..."] [--steps a,b] [--markdown F]
Exit status: 0 iff 0 wrong paths, 0 wrong actor fields and fstrail ran and stopped cleanly.
Needs root, util-linux (unshare, setpriv, mount), git, tar, rsync, attr, acl.
"""
import argparse
import base64
import datetime
import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import time

NOBODY = 65534
LOGIN_UID = 4242  # the login uid set in the chown/chmod step's shell
TAR_FILES = 2000
WRITERS = 300
ACTOR_FIELDS = ("pid", "ppid", "uid", "euid", "loginuid", "comm", "exe")
CRED_FIELDS = ("uid", "euid", "loginuid")
MISSING_KINDS = ("create", "modify", "delete", "chmod", "chown", "xattr", "rename")


def die(msg):
    print(f"real_workloads: {msg}", file=sys.stderr)
    sys.exit(2)


def b(path):
    return os.fsencode(path)


def program(name):
    """The truth for a process that executed `name` found in PATH: comm and exe."""
    found = shutil.which(name)
    if not found:
        die(f"{name} not found (scripts/install-deps.sh installs the suite's tools)")
    return {"comm": os.path.basename(found)[:15], "exe": {os.path.realpath(found)}}


def read_loginuid():
    with open("/proc/self/loginuid") as f:
        value = int(f.read())
    return None if value == 4294967295 else value


# ---------------------------------------------------------------- the trees


def snapshot(top):
    """{path bytes: (mode, dev, ino, uid, gid, size, mtime_ns, nlink, xattrs, link target)}.
    Walks with directory fds, so paths longer than PATH_MAX are seen too."""
    top = b(top)
    out = {}
    try:
        st = os.lstat(top)
    except FileNotFoundError:
        return out

    def entry(path, st, dfd, name):
        try:
            where = b"/proc/self/fd/%d/%s" % (dfd, name) if dfd is not None else path
            xattrs = tuple(sorted(os.listxattr(where, follow_symlinks=False)))
            values = tuple(os.getxattr(where, x, follow_symlinks=False) for x in xattrs)
        except OSError:
            xattrs, values = (), ()
        target = None
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(name, dir_fd=dfd) if dfd is not None else os.readlink(path)
        out[path] = (st.st_mode, st.st_dev, st.st_ino, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns,
                     st.st_nlink, tuple(zip(xattrs, values)), target)

    entry(top, st, None, None)
    if not stat.S_ISDIR(st.st_mode):
        return out

    def walk(dfd, path):
        for name in os.listdir(dfd):
            name = b(name)
            try:
                st = os.lstat(name, dir_fd=dfd)
            except FileNotFoundError:
                continue
            child = path + b"/" + name
            entry(child, st, dfd, name)
            if stat.S_ISDIR(st.st_mode):
                try:
                    cfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)
                except OSError:
                    continue
                try:
                    walk(cfd, child)
                finally:
                    os.close(cfd)

    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        walk(fd, top)
    finally:
        os.close(fd)
    return out


# ---------------------------------------------------------------- steps


class Step:
    """One workload: its directory, what it ran (pid -> truth), its credentials, the paths
    that existed during it, and the events that fell to it."""

    def __init__(self, suite, name, creds=None, helpers=True):
        self.suite = suite
        self.name = name
        self.dir = os.path.join(suite.root, name)
        self.creds = creds or {"uid": 0, "euid": 0, "loginuid": suite.loginuid}
        self.helpers = helpers  # False: every process acting in the step was started (and is known) here
        self.known = {}  # pid -> truth dict
        self.paths = set()  # bytes, every path known to have existed
        self.symlinks = {}  # bytes path -> bytes target, every symlink seen
        self.patterns = []  # (dir bytes, compiled regex on the name) for temp names
        self.snap_dirs = [self.dir]
        self.snap_dirs_after = None  # where the tree is after the step, when it moved
        self.moved = []  # (old, new) directories the step renamed: their contents moved with them
        self.unwatched = []  # directories whose entries existed but are not the watched tree's
        self.before = {}
        self.after = {}
        self.events = []
        self.expect_renames = 0
        self.pid_in_content = False  # each file holds the pid of the process that wrote it
        self.notes = []
        self.start_ns = self.end_ns = 0

    def run(self, argv, prog=None, creds=None, cwd=None, check=True, wait=True, extra_exe=(), stdin=None):
        """Starts argv (whose pid ends up executing `prog`, default argv[0]) and records its truth."""
        prog = dict(program(prog or argv[0]))
        prog["exe"] = set(prog["exe"]) | set(extra_exe)
        truth = dict(prog)
        truth.update(creds or self.creds)
        truth["ppid"] = os.getpid()
        p = subprocess.Popen(argv, cwd=cwd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        truth["pid"] = p.pid
        self.known[p.pid] = truth
        if not wait:
            return p
        out, err = p.communicate(timeout=120)
        if check and p.returncode != 0:
            die(f"step {self.name}: {shlex.join(argv)} exited {p.returncode}: {err.decode(errors='replace')}")
        return out

    def declare(self, *paths):
        for p in paths:
            self.paths.add(b(p))

    def pattern(self, directory, regex):
        self.patterns.append((b(directory), re.compile(regex.encode(), re.S)))

    def take_snapshot(self):
        snap = {}
        dirs = self.snap_dirs_after if self.before and self.snap_dirs_after else self.snap_dirs
        for d in dirs:
            snap.update(snapshot(d))
        for p, v in snap.items():
            self.paths.add(p)
            if v[9] is not None:
                self.symlinks[p] = v[9]
        return snap


def python_step(code, *args):
    return [sys.executable, "-c", code, *args]


FD_WALK = r"""
import os, sys
target, name = sys.argv[1], sys.argv[2]
fd = os.open("/", os.O_PATH | os.O_DIRECTORY)
for part in [p for p in target.split("/") if p]:
    nfd = os.open(part, os.O_PATH | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
os.fchdir(fd)
with open(name, "w") as f:
    f.write("made in d\n")
"""

STORM = r"""
import os, sys, time
src, dst, want, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
done = 0
end = time.time() + seconds
while done < want and time.time() < end:
    try:
        os.rename(src, dst)
        done += 1
    except FileNotFoundError:
        pass
print(done)
"""

LONG_PATH = r"""
import os, sys
os.chdir(sys.argv[1])
for i in range(int(sys.argv[2])):
    name = "%03d" % i + "p" * 197
    os.mkdir(name)
    os.chdir(name)
with open("deep", "w") as f:
    f.write("deep\n")
"""


def make_tar(path):
    """>= TAR_FILES files with hostile names: spaces, newlines, invalid UTF-8, leading dashes,
    255-byte names and a directory chain past 3 000 bytes."""
    names = []
    for i in range(TAR_FILES):
        d = f"d{i % 20:02d}"
        kind = i % 5
        if kind == 0:
            n = f"with space {i}"
        elif kind == 1:
            n = f"new\nline {i}"
        elif kind == 2:
            n = os.fsdecode(b"bad\xff\xfeutf8-%d" % i)
        elif kind == 3:
            n = f"-{i} --leading-dash"
        else:
            n = f"{i:05d}" + "L" * 250
        names.append(f"{d}/{n}")
    deep = "/".join(f"{i:02d}" + "D" * 198 for i in range(15))
    names.append(f"{deep}/deep-file")
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape") as t:
        dirs = set()
        for n in names:
            parts = n.split("/")
            for k in range(1, len(parts)):
                dirs.add("/".join(parts[:k]))
        for d in sorted(dirs):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.mtime = 1700000000
            t.addfile(info)
        import io
        for i, n in enumerate(names):
            data = (b"x" * (i % 7)) if i % 10 else b""
            info = tarfile.TarInfo(n)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1700000000
            t.addfile(info, io.BytesIO(data))
    return len(names)


def xattr_namespace(directory):
    """user.* where the file system takes it; else trusted.* (root only), e.g. on tmpfs
    before Linux 6.6, where the VM tier's /tmp lives on the 6.1 kernel."""
    try:
        os.setxattr(directory, "user.fstrail-probe", b"1")
        os.removexattr(directory, "user.fstrail-probe")
        return "user."
    except OSError:
        return "trusted."


def make_source_tree(path, ns):
    """A tree for cp -a and rsync -a: files, subdirectories, a symlink, a hard link, user
    xattrs and ACLs."""
    os.makedirs(path)
    for i in range(120):
        d = os.path.join(path, f"sub{i % 6}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"file{i}.txt"), "w") as f:
            f.write(f"content {i}\n" * (i % 5 + 1))
    os.symlink("sub0/file0.txt", os.path.join(path, "link"))
    os.link(os.path.join(path, "sub1/file1.txt"), os.path.join(path, "hard"))
    subprocess.run(["setfattr", "-n", ns + "tag", "-v", "v1", os.path.join(path, "sub2/file2.txt")], check=True)
    subprocess.run(["setfacl", "-m", "u:65534:r", os.path.join(path, "sub3/file3.txt")], check=True)
    for dp, dn, fn in os.walk(path):
        os.chmod(dp, 0o755)


def make_git_repo(path, env):
    os.makedirs(path)
    for i in range(150):
        d = os.path.join(path, f"pkg{i % 10}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"m{i}.c"), "w") as f:
            f.write(f"int f{i}(void) {{ return {i}; }}\n")
    git = ["git", "-C", path, "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run(git + ["init", "-q"], check=True, env=env)
    subprocess.run(git + ["add", "-A"], check=True, env=env)
    subprocess.run(git + ["commit", "-qm", "one"], check=True, env=env)
    with open(os.path.join(path, "pkg0/m0.c"), "a") as f:
        f.write("/* two */\n")
    subprocess.run(git + ["commit", "-qam", "two"], check=True, env=env)


class Suite:
    def __init__(self, args):
        self.args = args
        self.fstrail = args.fstrail
        self.backend = args.backend
        self.base = tempfile.mkdtemp(prefix="fstrail-wl-")
        os.chmod(self.base, 0o755)
        self.root = os.path.join(self.base, "root")
        self.moved_root = os.path.join(self.base, "root.moved")
        self.fix = os.path.join(self.base, "fixtures")
        os.makedirs(self.root)
        os.makedirs(self.fix)
        self.loginuid = read_loginuid()
        self.steps = []
        self.mounts = []  # to undo in any case
        self.env = dict(os.environ, HOME=self.base, GIT_CONFIG_NOSYSTEM="1", LC_ALL="C")

    # --- preparation, before fstrail starts (nothing of it is an event)

    def prepare(self, names):
        self.xattr_ns = xattr_namespace(self.base)
        make_source_tree(os.path.join(self.fix, "src"), self.xattr_ns)
        for n in names:
            os.makedirs(os.path.join(self.root, n))
        if "git-clone" in names:
            make_git_repo(os.path.join(self.fix, "repo"), self.env)
        if "tar-x" in names:
            self.tar_members = make_tar(os.path.join(self.fix, "hostile.tar"))
        for n in ("rsync-root", "rsync-nobody"):
            if n in names:
                subprocess.run(["cp", "-a", os.path.join(self.fix, "src"), os.path.join(self.root, n, "src")], check=True)
        if "rsync-nobody" in names:
            os.chown(os.path.join(self.root, "rsync-nobody"), NOBODY, NOBODY)
        if "sed-i" in names:
            for i in range(20):
                with open(os.path.join(self.root, "sed-i", f"conf{i}.txt"), "w") as f:
                    f.write("alpha beta\n" * 10)
            subprocess.run(["setfacl", "-m", "u:65534:rw", os.path.join(self.root, "sed-i", "conf0.txt")], check=True)
        if "misc" in names:
            d = os.path.join(self.root, "misc")
            with open(os.path.join(d, "a"), "w") as f:
                f.write("a\n")
            for i in range(60):
                os.makedirs(os.path.join(d, "tree", f"s{i % 4}"), exist_ok=True)
                with open(os.path.join(d, "tree", f"s{i % 4}", f"f{i}"), "w") as f:
                    f.write("x")
        if "fd-walk" in names:
            os.makedirs(os.path.join(self.root, "fd-walk", "d"))
        if "chroot" in names:
            jail = os.path.join(self.root, "chroot")
            os.makedirs(os.path.join(jail, "usr"))
            for link in ("bin", "lib", "lib64", "sbin"):
                if os.path.islink("/" + link):
                    os.symlink(os.readlink("/" + link), os.path.join(jail, link))
        if "bind-mount" in names:
            os.makedirs(os.path.join(self.root, "bind-mount", "app"))
        if "symlink-dir" in names:
            os.makedirs(os.path.join(self.root, "symlink-dir", "real"))
            os.symlink("real", os.path.join(self.root, "symlink-dir", "link"))
        if "chown-chmod" in names:
            subprocess.run(["cp", "-a", os.path.join(self.fix, "src"), os.path.join(self.root, "chown-chmod", "tree")],
                           check=True)
        if "writers" in names:
            os.chmod(os.path.join(self.root, "writers"), 0o755)
        if "rename-storm" in names:
            with open(os.path.join(self.root, "rename-storm", "a"), "w") as f:
                f.write("storm\n")
        if "subdir-rename" in names:
            os.makedirs(os.path.join(self.root, "subdir-rename", "sub", "inner"))
            for i in range(10):
                with open(os.path.join(self.root, "subdir-rename", "sub", "inner", f"f{i}"), "w") as f:
                    f.write("x\n")
        if "tmpfs" in names:
            os.makedirs(os.path.join(self.root, "tmpfs", "mnt"))

    # --- the steps: each gets its Step (s); paths named here are bytes-safe str

    def step_git_clone(self, s):
        s.run(["git", "clone", "-q", "--local", os.path.join(self.fix, "repo"), os.path.join(s.dir, "clone")])
        git = os.path.join(s.dir, "clone", ".git")
        # git's lock and temporary files: NAME.lock next to NAME, tmp_* / incoming-* objects.
        s.pattern(git, r"(?P<base>.+)\.lock")
        s.pattern(git, r"(tmp_|incoming-).*")
        # init's probe for symbolic links (a symlink "tXXXXXX", removed at once), and the
        # packed-refs rewrite: both seen with strace -f -e trace=%file git clone --local.
        s.pattern(git, r"t[A-Za-z0-9]{6}")
        s.pattern(git, r"packed-refs\.new")

    def step_tar_x(self, s):
        s.run(["tar", "-xf", os.path.join(self.fix, "hostile.tar"), "-C", s.dir])

    def step_cp_a(self, s):
        s.run(["cp", "-a", os.path.join(self.fix, "src"), os.path.join(s.dir, "dst")])

    def _rsync(self, s, creds):
        argv = ["rsync", "-a", "src/", "dst/"]
        if creds["uid"] != 0:
            argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] + argv
        s.run(argv, prog="rsync", creds=creds, cwd=s.dir)
        # rsync's temporary files: .NAME.XXXXXX in the destination directory.
        s.pattern(os.path.join(s.dir, "dst"), r"\.(?P<base>.+)\.[A-Za-z0-9]{6}")

    def step_rsync_root(self, s):
        self._rsync(s, s.creds)

    def step_rsync_nobody(self, s):
        self._rsync(s, s.creds)

    def step_sed_i(self, s):
        files = sorted(os.path.join(s.dir, f) for f in os.listdir(s.dir))
        s.run(["sed", "-i", "s/alpha/gamma/"] + files)
        s.pattern(s.dir, r"sed[A-Za-z0-9]{6}$")

    def step_misc(self, s):
        d = s.dir
        s.run(["mv", f"{d}/a", f"{d}/b"])
        s.run(["ln", f"{d}/b", f"{d}/hard"])
        s.run(["ln", "-s", "b", f"{d}/soft"])
        s.run(["setfattr", "-n", self.xattr_ns + "misc", "-v", "1", f"{d}/b"])
        s.run(["truncate", "-s", "100", f"{d}/hard"])
        s.run(["rm", "-rf", f"{d}/tree"])
        s.declare(f"{d}/a", f"{d}/b")

    def step_fd_walk(self, s):
        # From a cwd outside the tree, from the tree's step directory, and from d itself.
        for cwd, name in ((self.base, "made_in_d"), (s.dir, "made_in_d_from_step"),
                          (os.path.join(s.dir, "d"), "made_in_d_from_d")):
            s.run(python_step(FD_WALK, os.path.join(s.dir, "d"), name), prog=sys.executable, cwd=cwd)

    def step_chroot(self, s):
        jail = s.dir
        script = (f"mount --bind /usr {jail}/usr && exec chroot {jail} /bin/sh -c "
                  "'echo made in jail > /made_in_jail; mkdir /jaildir; echo x > /jaildir/f'")
        s.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], prog="sh",
              extra_exe={os.path.join(jail, "usr/bin/dash")})

    def step_bind_mount(self, s):
        bm = tempfile.mkdtemp(prefix="bm-", dir=self.base)
        app = os.path.join(s.dir, "app")
        # In a private mount namespace: the mount dies with the shell; `echo` is the shell's own.
        s.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
               f"mount --bind {app} {bm} && echo through > {bm}/y && mkdir {bm}/z && echo z > {bm}/z/f"], prog="sh")
        s.notes.append(f"written through {bm} (bind mount of {app})")

    def step_symlink_dir(self, s):
        s.run(["sh", "-c", f"echo through > {s.dir}/link/f; mkdir {s.dir}/link/sub; echo y > {s.dir}/link/sub/g"])

    def step_chown_chmod(self, s):
        tree = os.path.join(s.dir, "tree")
        for argv in (["chown", "-R", f"{NOBODY}:{NOBODY}", tree], ["chmod", "-R", "g+w,o-r", tree]):
            s.run(["sh", "-c", f'echo {LOGIN_UID} > /proc/self/loginuid && exec "$@"', "sh"] + argv, prog=argv[0])

    def step_writers(self, s):
        running = []
        for i in range(WRITERS):
            running.append(s.run(["sh", "-c", f"echo $$ > {s.dir}/w{i}"], wait=False))
            if len(running) >= 20:
                for p in running:
                    p.communicate()
                running = []
        for p in running:
            p.communicate()
        s.pid_in_content = True

    def step_rename_storm(self, s):
        a, bb = os.path.join(s.dir, "a"), os.path.join(s.dir, "b")
        p1 = s.run(python_step(STORM, a, bb, "2500", "8"), prog=sys.executable, wait=False)
        p2 = s.run(python_step(STORM, bb, a, "2500", "8"), prog=sys.executable, wait=False)
        s.expect_renames = int(p1.communicate()[0]) + int(p2.communicate()[0])
        s.declare(a, bb)
        s.notes.append(f"{s.expect_renames} renames succeeded")

    def step_subdir_rename(self, s):
        d = s.dir
        s.run(["mv", f"{d}/sub", f"{d}/sub.old"])
        s.moved.append((b(f"{d}/sub"), b(f"{d}/sub.old")))
        s.run(["mkdir", f"{d}/sub"])
        s.run(["sh", "-c", f"echo new > {d}/sub/new; echo old > {d}/sub.old/inner/after"])
        s.declare(f"{d}/sub/inner")

    def step_tmpfs(self, s):
        mnt = os.path.join(s.dir, "mnt")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "fstrail-wl", mnt], check=True)
        self.mounts.append(mnt)
        time.sleep(0.5)
        s.run(["sh", "-c", f"echo on tmpfs > {mnt}/t; mkdir {mnt}/dir; echo x > {mnt}/dir/u"])
        s.after_hook = lambda: (subprocess.run(["umount", mnt], check=True), self.mounts.remove(mnt))

    def step_long_path(self, s):
        s.run(python_step(LONG_PATH, s.dir, "22"), prog=sys.executable)

    def step_root_rename(self, s):
        s.snap_dirs_after = [os.path.join(self.moved_root, s.name), self.root]
        s.run(["mv", self.root, self.moved_root])
        s.moved.append((b(self.root), b(self.moved_root)))
        s.unwatched.append(b(self.root))  # the new ROOT is another directory: no event is owed
        s.declare(self.root, self.moved_root)
        s.run(["mkdir", self.root])
        moved = os.path.join(self.moved_root, s.name)
        s.run(["sh", "-c", f"echo moved > {moved}/in_moved; mkdir {moved}/dir_in_moved; "
                           f"echo new > {self.root}/in_new_root"])

    STEPS = ["git-clone", "tar-x", "cp-a", "rsync-root", "rsync-nobody", "sed-i", "misc", "fd-walk", "chroot",
             "bind-mount", "symlink-dir", "chown-chmod", "writers", "rename-storm", "subdir-rename", "tmpfs",
             "long-path", "root-rename"]

    def make_step(self, name):
        if name == "rsync-nobody":
            return Step(self, name, creds={"uid": NOBODY, "euid": NOBODY, "loginuid": self.loginuid})
        if name == "chown-chmod":
            return Step(self, name, creds={"uid": 0, "euid": 0, "loginuid": LOGIN_UID})
        helpers = name not in ("misc", "fd-walk", "writers", "rename-storm", "long-path", "tar-x", "cp-a",
                               "sed-i")
        return Step(self, name, helpers=helpers)

    # --- fstrail

    def start(self):
        self.out_path = os.path.join(self.base, "events.jsonl")
        self.err_path = os.path.join(self.base, "stderr.txt")
        argv = [self.fstrail, "watch", "--json", "--backend", self.backend] + shlex.split(self.args.fstrail_opts) + [
            self.root]
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.watcher = subprocess.Popen(argv, stdout=out, stderr=err)
        deadline = time.time() + 60
        while "watching" not in open(self.err_path).read():
            if self.watcher.poll() is not None:
                die(f"fstrail exited at start ({self.watcher.returncode}): {open(self.err_path).read()}")
            if time.time() > deadline:
                die("fstrail did not start within 60 s")
            time.sleep(0.1)

    def stop(self):
        time.sleep(2)  # let the last events through
        early = self.watcher.poll()
        if early is None:
            self.watcher.send_signal(signal.SIGINT)
            try:
                self.watcher.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.watcher.kill()
                self.watcher.wait()
        self.stopped_early = early is not None
        self.status = self.watcher.returncode
        self.stderr = open(self.err_path, errors="replace").read()
        m = re.search(r"fstrail: (\d+) events.*?, (\d+) lost", self.stderr)
        self.summary_lost = int(m.group(2)) if m else None
        self.summary = m.group(0) if m else None

    def run(self, names):
        self.prepare(names)
        self.start()
        try:
            for name in names:
                s = self.make_step(name)
                s.after_hook = None
                s.before = s.take_snapshot()
                s.start_ns = time.time_ns()
                getattr(self, "step_" + name.replace("-", "_"))(s)
                time.sleep(0.3)
                s.end_ns = time.time_ns()
                s.after = s.take_snapshot()
                if s.after_hook:
                    s.after_hook()
                if self.watcher.poll() is not None:
                    s.notes.append(f"fstrail exited ({self.watcher.returncode}) during this step")
                self.steps.append(s)
        finally:
            for m in reversed(self.mounts):
                subprocess.run(["umount", "-l", m])
            self.stop()
        self.load_events()

    def load_events(self):
        self.events = []
        with open(self.out_path, "rb") as f:
            for line in f:
                self.events.append(json.loads(line))
        by_dir = {}
        for s in self.steps:
            by_dir[b(s.dir)] = s
            by_dir[b(os.path.join(self.moved_root, s.name))] = s
        self.unassigned = Step(self, "(no step)")
        for e in self.events:
            e["_path"] = event_path(e, "path")
            e["_old"] = event_path(e, "old_path")
            e["_ns"] = parse_time(e["time"])
            owner = None
            for p in (e["_path"], e["_old"]):
                if p is None:
                    continue
                for d, s in by_dir.items():
                    if p == d or p.startswith(d + b"/"):
                        owner = s
                        break
                if owner:
                    break
            if owner is None:  # the root itself, a lost event, a path outside: the last step started by then
                for s in self.steps:
                    if s.start_ns <= e["_ns"]:
                        owner = s
            (owner or self.unassigned).events.append(e)


def event_path(e, field):
    if e.get(field + "_b64"):
        return base64.b64decode(e[field + "_b64"])
    v = e.get(field)
    return None if v is None else v.encode("utf-8", "surrogateescape")


def parse_time(t):
    whole, frac = t.rstrip("Z").split(".")
    dt = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int(dt.timestamp()) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])


# ---------------------------------------------------------------- judging


class Verdict:
    def __init__(self, step):
        self.step = step
        self.events = 0
        self.wrong_paths = []
        self.wrong_actors = []
        self.nulls = 0
        self.null_fields = {}
        self.missing = {}
        self.missing_examples = {}
        self.duplicates = 0
        self.lost = 0
        self.expected_arrivals = 0  # entries the step made that must come as create/mkdir/...


def resolve_links(path, step, suite):
    """The path with each symlink among its leading components replaced by its target
    (links seen in the step's trees): the same file, written through the link."""
    parts = path.split(b"/")
    cur = b""
    for i, part in enumerate(parts[1:], 1):
        cur = cur + b"/" + part
        if cur in step.symlinks and i < len(parts) - 1:
            target = step.symlinks[cur]
            base = target if target.startswith(b"/") else os.path.dirname(cur) + b"/" + target
            return resolve_links(os.path.normpath(base) + b"/" + b"/".join(parts[i + 1:]), step, suite)
    return path


def path_existed(path, step, suite):
    root, moved = b(suite.root), b(suite.moved_root)
    if not (path == root or path.startswith(root + b"/") or path == moved or path.startswith(moved + b"/")):
        return False
    for p in (path, resolve_links(path, step, suite)):
        if p in step.paths or p in (root, moved):
            return True
        d, name = os.path.split(p)
        for pd, rx in step.patterns:
            m = (d == pd or d.startswith(pd + b"/")) and rx.fullmatch(name)
            # a temp name for NAME (rsync's .NAME.XXXXXX, git's NAME.lock) only next to NAME
            if m and ("base" not in rx.groupindex or d + b"/" + m.group("base") in step.paths):
                return True
    return False


def judge(suite, step):
    v = Verdict(step)
    real = [e for e in step.events if e["kind"] != "lost"]
    v.events = len(real)
    v.lost = sum((e.get("lost") or 0) for e in step.events if e["kind"] == "lost")
    content = {}
    if step.pid_in_content:
        for p, st in step.after.items():
            if stat.S_ISREG(st[0]):
                try:
                    content[p] = int(open(p, "rb").read().strip() or b"-1")
                except (OSError, ValueError):
                    pass
    for e in real:
        for field in ("_path", "_old"):
            p = e[field]
            if p is not None and not path_existed(p, step, suite):
                v.wrong_paths.append((field.strip("_"), p, e))
        truth = step.known.get(e.get("pid"))
        fields = ACTOR_FIELDS if truth else CRED_FIELDS
        truth = truth or step.creds
        for f in ACTOR_FIELDS:  # nulls are counted on every actor field, values checked on `fields`
            got = e.get(f)
            want = truth.get(f)
            if f == "loginuid" and want is None and f in fields:
                if got is not None:
                    v.wrong_actors.append((f, got, "null (unset)", e))
                continue
            if got is None:
                if not (f == "loginuid" and step.creds.get("loginuid") is None):
                    v.nulls += 1
                    v.null_fields[f] = v.null_fields.get(f, 0) + 1
                continue
            if f not in fields:
                continue
            ok = got in want if isinstance(want, set) else got == want
            if not ok:
                v.wrong_actors.append((f, got, want, e))
        if e.get("pid") is not None and not step.helpers and e["pid"] not in step.known:
            v.wrong_actors.append(("pid", e["pid"], sorted(step.known), e))
        if step.pid_in_content and e["_path"] in content and e.get("pid") is not None and \
                e["kind"] in ("create", "modify") and e["pid"] != content[e["_path"]]:
            v.wrong_actors.append(("pid", e["pid"], content[e["_path"]], e))
    count_missing(v, step, real)
    # A duplicate: the same event twice in a row on one path (same kind, process, new value),
    # nothing else on that path in between. Repeated modify/xattr/truncate can be real.
    last = {}
    for e in real:
        key = (e["kind"], e.get("pid"), e.get("new_mode"), e.get("new_uid"), e.get("new_gid"))
        if e["kind"] not in ("modify", "rename", "xattr", "truncate") and last.get(e["_path"]) == key:
            v.duplicates += 1
        last[e["_path"]] = key
        if e["_old"] is not None:
            last[e["_old"]] = ("rename-from",)
    return v


def count_missing(v, step, real):
    def miss(kind, path):
        v.missing[kind] = v.missing.get(kind, 0) + 1
        v.missing_examples.setdefault(kind, path)

    at = {}
    inos = {}
    for e in real:
        if e["kind"] == "rename" and e["_old"] is not None:
            # what happened under the old name (rsync's and sed's temp files) counts for the new one
            at.setdefault(e["_path"], set()).update(at.get(e["_old"], set()) - {"rename-from"})
            at.setdefault(e["_old"], set()).add("rename-from")
        for p in {e["_path"], resolve_links(e["_path"], step, None)}:
            at.setdefault(p, set()).add(e["kind"])
        if e.get("ino") is not None:
            inos.setdefault(e["ino"], set()).add(e["kind"])
    renamed_from = [p for p, k in at.items() if "rename-from" in k]
    before, after = step.before, step.after
    before_by_ino = {st[2]: st for st in before.values()}
    before_path_by_ino = {st[2]: q for q, st in before.items()}
    before_inos = set(before_by_ino)

    def under(p, dirs):
        return any(p.startswith(d + b"/") for d in dirs)

    for p, st in after.items():
        if any(p == u or p.startswith(u + b"/") for u in step.unwatched):
            continue
        old = before.get(p)
        kinds = at.get(p, set()) | inos.get(st[2], set())
        if old is not None and old[1] != st[1]:
            continue  # a file system mounted on it: not an event
        if old is None or old[2] != st[2]:
            moved_along = st[2] in before_inos and under(p, [new for _, new in step.moved])
            if not moved_along:  # else the rename of a directory above is the event
                v.expected_arrivals += 1
                if not at.get(p, set()) & {"create", "mkdir", "symlink", "link", "rename"}:
                    miss("create", p)
            was = before_by_ino.get(st[2])
            if was is None or before_path_by_ino[st[2]] in after:
                # new, or an inode number reused after its file was replaced (sed -i): new content
                if stat.S_ISREG(st[0]) and st[5] > 0 and st[7] == 1 and "modify" not in kinds:
                    miss("modify", p)
                # xattrs on a new file were set by the step (cp -a: user.*, ACLs); security.* may be the LSM's
                if any(not x.startswith("security.") for x, _ in st[8]) and "xattr" not in kinds:
                    miss("xattr", p)
                continue
            old = was  # renamed or linked here (its old name is gone): compare with what it was
        if stat.S_ISREG(st[0]) and (old[5] != st[5] or old[6] != st[6]) and \
                not kinds & {"modify", "truncate"}:
            miss("modify", p)
        if stat.S_IMODE(old[0]) != stat.S_IMODE(st[0]) and not stat.S_ISLNK(st[0]) and "chmod" not in kinds:
            miss("chmod", p)
        if (old[3], old[4]) != (st[3], st[4]) and "chown" not in kinds:
            miss("chown", p)
        acl_by_chmod = stat.S_IMODE(old[0]) != stat.S_IMODE(st[0]) and \
            {x for x, _ in old[8] if not x.startswith("system.posix_acl")} == \
            {x for x, _ in st[8] if not x.startswith("system.posix_acl")}  # chmod rewrites the ACL mask
        if old[8] != st[8] and "xattr" not in kinds and not acl_by_chmod:
            miss("xattr", p)
    for p in before:
        if p in after:
            continue
        kinds = at.get(p, set())
        if kinds & {"delete", "rmdir", "rename-from"}:
            continue
        if under(p, renamed_from) or under(p, [old for old, _ in step.moved]):
            continue
        miss("delete", p)
    if step.expect_renames:
        got = sum(1 for e in real if e["kind"] == "rename")
        if got < step.expect_renames:
            v.missing["rename"] = step.expect_renames - got


def show_path(p):
    return repr(p.decode("utf-8", "backslashreplace")) if p is not None else "null"


def brief(e):
    keep = {k: e.get(k) for k in ("kind", "path", "old_path", "pid", "ppid", "uid", "euid", "loginuid", "comm", "exe",
                                  "actor_source")}
    return json.dumps(keep, ensure_ascii=True)


def report(suite, verdicts, markdown):
    header = ["step", "events", "wrong paths", "wrong actor fields", "null actor fields", "missing", "duplicates",
              "lost"]
    rows = []
    for v in verdicts:
        missing = ", ".join(f"{k} {n}" for k, n in sorted(v.missing.items())) or "0"
        nulls = str(v.nulls) + (" (" + ", ".join(f"{k} {n}" for k, n in sorted(v.null_fields.items())) + ")"
                                if v.null_fields else "")
        rows.append([v.step.name, str(v.events), str(len(v.wrong_paths)), str(len(v.wrong_actors)), nulls, missing,
                     str(v.duplicates), str(v.lost)])
    total_lost = suite.summary_lost
    rows.append(["total", str(sum(v.events for v in verdicts)), str(sum(len(v.wrong_paths) for v in verdicts)),
                 str(sum(len(v.wrong_actors) for v in verdicts)), str(sum(v.nulls for v in verdicts)),
                 str(sum(sum(v.missing.values()) for v in verdicts)), str(sum(v.duplicates for v in verdicts)),
                 f"{total_lost} (summary)"])
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    print(f"\nbackend {suite.backend} {suite.args.fstrail_opts}".rstrip())
    for r in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(f"{suite.summary}; exit status {suite.status}"
          + (" (exited before the end)" if suite.stopped_early else ""))
    if markdown:
        with open(markdown, "w") as f:
            f.write(f"backend `{suite.backend}` {suite.args.fstrail_opts}".rstrip() + "\n\n")
            f.write("| " + " | ".join(header) + " |\n")
            f.write("|" + " --- |" * len(header) + "\n")
            for r in rows:
                f.write("| " + " | ".join(r) + " |\n")


def self_test():
    """The judge against events made up for the purpose: each kind of wrong is caught, each
    kind of right is let through (no root, no fstrail)."""
    import types
    suite = types.SimpleNamespace(root="/w/root", moved_root="/w/root.moved", loginuid=None)
    step = Step(suite, "st", helpers=False)
    d = b"/w/root/st"
    step.paths |= {d, d + b"/real", d + b"/real/f", d + b"/dst", d + b"/dst/f1", d + b"/link"}
    step.symlinks[d + b"/link"] = b"real"
    step.pattern("/w/root/st/dst", r"\.(?P<base>.+)\.[A-Za-z0-9]{6}")
    step.known[100] = {"pid": 100, "ppid": 1, "uid": 0, "euid": 0, "loginuid": None, "comm": "sh",
                       "exe": {"/usr/bin/dash"}}

    def ev(path, pid=100, **kw):
        e = {"kind": "create", "time": "2026-01-01T00:00:00.0Z", "path": path, "old_path": None, "pid": pid,
             "ppid": 1, "uid": 0, "euid": 0, "loginuid": None, "comm": "sh", "exe": "/usr/bin/dash"}
        e.update(kw)
        e["_path"], e["_old"] = event_path(e, "path"), event_path(e, "old_path")
        return e

    cases = [  # (event, wrong paths, wrong actor fields, nulls)
        (ev("/w/root/st/real/f"), 0, 0, 0),
        (ev("/w/root/st/link/f"), 0, 0, 0),  # written through the link
        (ev("/w/root/st/dst/.f1.AbC123"), 0, 0, 0),  # rsync's temp name next to f1
        (ev("/w/root/st/dst/.f2.AbC123"), 1, 0, 0),  # ... but f2 never existed
        (ev("/w/root/st/f"), 1, 0, 0),
        (ev("/w/root/st/real/f", old_path="/w/root/st/real/g", kind="rename"), 1, 0, 0),
        (ev("/elsewhere/f"), 1, 0, 0),
        (ev("/w/root/st/real/f", exe="/usr/bin/sh"), 0, 1, 0),
        (ev("/w/root/st/real/f", exe=None, comm=None), 0, 0, 2),
        (ev("/w/root/st/real/f", loginuid=1000), 0, 1, 0),  # unset login uid reported as set
        (ev("/w/root/st/real/f", pid=101), 0, 1, 0),  # every process of this step is known
        (ev("/w/root/st/real/f", uid=65534, ppid=7), 0, 2, 0),
    ]
    bad = 0
    for e, paths, actors, nulls in cases:
        step.events = [e]
        v = judge(suite, step)
        got = (len(v.wrong_paths), len(v.wrong_actors), v.nulls)
        if got != (paths, actors, nulls):
            bad += 1
            print(f"self-test: {brief(e)}: got (wrong paths, wrong actors, nulls) {got}, "
                  f"want {(paths, actors, nulls)}")
    print(f"self-test: {len(cases) - bad} of {len(cases)} cases right")
    return 1 if bad else 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("fstrail")
    ap.add_argument("--backend", required=True)
    ap.add_argument("--fstrail-opts", default="", help="extra options for fstrail watch, e.g. '--tracepoint-mode strings'")
    ap.add_argument("--steps", default="", help="comma-separated subset of: " + ",".join(Suite.STEPS))
    ap.add_argument("--markdown", help="also write the table as Markdown to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary tree and the events")
    ap.add_argument("--max-examples", type=int, default=5, help="wrong events printed per step and kind")
    args = ap.parse_args()
    if os.geteuid() != 0:
        die("needs root (fanotify, BPF, mount, chroot, another user)")
    names = args.steps.split(",") if args.steps else list(Suite.STEPS)
    for n in names:
        if n not in Suite.STEPS:
            die(f"unknown step {n}; steps: {','.join(Suite.STEPS)}")
    names = [n for n in Suite.STEPS if n in names]  # root-rename stays last
    suite = Suite(args)
    t0 = time.time()
    try:
        suite.run(names)
        verdicts = [judge(suite, s) for s in suite.steps]
        if suite.unassigned.events:
            suite.unassigned.paths = set()
            for s in suite.steps:
                suite.unassigned.paths |= s.paths
                suite.unassigned.symlinks.update(s.symlinks)
            verdicts.append(judge(suite, suite.unassigned))
        failed = False
        for v in verdicts:
            for what, items in (("wrong path", v.wrong_paths), ("wrong actor", v.wrong_actors)):
                for item in items[:args.max_examples]:
                    failed = True
                    if what == "wrong path":
                        field, p, e = item
                        print(f"WRONG PATH [{v.step.name}] {field} {show_path(p)} never existed: {brief(e)}")
                    else:
                        field, got, want, e = item
                        print(f"WRONG ACTOR [{v.step.name}] {field}={got!r}, truth {want!r}: {brief(e)}")
                if len(items) > args.max_examples:
                    failed = True
                    print(f"... [{v.step.name}] {len(items) - args.max_examples} more {what}(s)")
            for kind, p in v.missing_examples.items():
                print(f"missing [{v.step.name}] {kind} {v.missing[kind]}x, e.g. {show_path(p)}")
            for note in v.step.notes:
                print(f"note [{v.step.name}] {note}")
        report(suite, verdicts, args.markdown)
        # Never vacuous: a backend that reports (almost) nothing fails, wrong or not.
        expected = sum(v.expected_arrivals for v in verdicts)
        missed = sum(v.missing.get("create", 0) for v in verdicts)
        if not args.steps and (expected == 0 or missed * 2 > expected):
            print(f"FAIL: {missed} of the {expected} entries the steps made got no event")
            failed = True
        print(f"took {time.time() - t0:.0f} s; tree {suite.base}" + ("" if args.keep else " (removed)"))
        if suite.stopped_early or suite.status != 0:
            print(f"FAIL: fstrail exited with status {suite.status}"
                  + (" before it was stopped" if suite.stopped_early else "") + ":\n"
                  + "\n".join(line if len(line) < 300 else line[:150] + " ... " + line[-120:]
                              for line in suite.stderr.splitlines()[-10:]))
            failed = True
        if failed:
            print("FAIL: see above")
            return 1
        print("ok: 0 wrong paths, 0 wrong actor fields")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(suite.base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
