#!/usr/bin/python3
"""I/O faults and truncated inputs, through the `calib` program.

Every command that writes a file (-o of eval, eval --partial, fit, apply,
diagram, report, merge, compare and demo; compare's --diagram) is run
against a target that cannot be written:
  - /dev/full (through a symlink): the write fails (exit 74), the device is
    written in place, never replaced, and no temporary file is left;
  - a read-only directory (exit 73): real even as root, where permissions
    do not stop writes, by running calib as `nobody` with setpriv;
  - a missing directory (exit 73);
  - a file-size limit (RLIMIT_FSIZE, `ulimit -f`): SIGXFSZ must not kill
    calib; the write fails with EFBIG (exit 74).
In each case a previous file at the target keeps its content and no
temporary file is left next to it.  Then a few truncated inputs: a .npy cut
inside its data, a gzip stream without its trailer, a CSV cut inside a row
fail (65) naming the file (and the line), and leave no output.

Loaded by tests/cli/run.py, or alone:
    CALIB=build/calib /usr/bin/python3 tests/cli/test_faults.py
"""
import gzip
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import unittest

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALIB = os.path.abspath(os.environ.get("CALIB", os.path.join(ROOT, "build", "calib")))
SETPRIV = shutil.which("setpriv")
NOBODY = 65534
OLD = b"previous content\n"


def run(args, preexec=None, user=None):
    """Runs calib with args; returns (exit code, stderr text)."""
    cmd = [CALIB] + [str(a) for a in args]
    if user is not None:
        cmd = [SETPRIV, "--reuid=%d" % user, "--regid=%d" % user,
               "--clear-groups"] + cmd
    p = subprocess.run(cmd, capture_output=True, timeout=300,
                       preexec_fn=preexec)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def fsize_limit(nbytes):
    """preexec_fn: a file-size limit, with SIGXFSZ at its default action
    (terminate), as a shell's `ulimit -f` leaves it."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    return limit


class Faults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="calib-faults-")
        os.chmod(cls.dir, 0o755)  # `nobody` reads the inputs
        rng = np.random.default_rng(8)
        n, k = 400, 4
        z = rng.normal(0, 2, (n, k))
        y = rng.integers(0, k, n)
        cls.csv = cls.path("data.csv")
        with open(cls.csv, "w") as f:
            f.write("logit_0,logit_1,logit_2,logit_3,label\n")
            for zi, yi in zip(z, y):
                f.write("%s,%d\n" % (",".join("%.6f" % v for v in zi), yi))
        rc, err = run(["fit", cls.csv, "-o", cls.path("cal.json")])
        assert rc == 0, err
        rc, err = run(["eval", cls.csv, "--partial", "-o", cls.path("part.json")])
        assert rc == 0, err
        for name in os.listdir(cls.dir):
            os.chmod(cls.path(name), 0o644)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    def commands(self, out):
        """Every command that writes, with its output at `out` (a file; for
        demo, a directory)."""
        d, c = self.csv, self.path("cal.json")
        return {
            "eval -o": ["eval", d, "-o", out],
            "eval --json -o": ["eval", d, "--json", "-o", out],
            "eval --partial -o": ["eval", d, "--partial", "-o", out],
            "fit -o": ["fit", d, "-o", out],
            "apply -o csv": ["apply", c, d, "-o", out + ".csv"],
            "apply -o npy": ["apply", c, d, "-o", out + ".npy"],
            "diagram -o svg": ["diagram", d, "-o", out + ".svg"],
            "diagram -o png": ["diagram", d, "-o", out + ".png"],
            "report -o": ["report", "--val", d, "--test", d, "-o", out + ".html"],
            "merge -o": ["merge", self.path("part.json"), "--json", "-o", out],
            "compare -o": ["compare", d, d, "-o", out],
            "compare --diagram": ["compare", d, d, "--diagram", out + ".svg"],
            "demo -o": ["demo", "-o", out],
        }

    @staticmethod
    def target(args):
        """The file (or demo's directory) a command line writes."""
        i = args.index("-o") if "-o" in args else args.index("--diagram")
        return args[i + 1]

    def check_untouched(self, args, before):
        """The directory of the target holds exactly `before` (name ->
        content): no temporary file, old content intact."""
        t = self.target(args)
        d = os.path.dirname(t) if args[0] != "demo" else t
        if not os.path.isdir(d):
            return
        now = {}
        for name in os.listdir(d):
            p = os.path.join(d, name)
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    now[name] = f.read()
        self.assertEqual(sorted(now), sorted(before),
                         "%s: files left: %s" % (" ".join(args), sorted(now)))
        for name, content in before.items():
            self.assertEqual(now[name], content, "%s: %s changed" % (args[0], name))

    def seed_target(self, args, d):
        """Writes OLD at the target (demo: at DIR/val.csv and test.csv);
        returns what the directory holds."""
        t = self.target(args)
        names = [os.path.join(t, "val.csv"), os.path.join(t, "test.csv")] \
            if args[0] == "demo" else [t]
        for p in names:
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(OLD)
        base = t if args[0] == "demo" else d
        return {n: OLD for n in os.listdir(base)}

    # ---- /dev/full ---------------------------------------------------------

    def test_dev_full(self):
        """Through a symlink to /dev/full in the test directory: a calib
        that wrongly renamed a temporary file over its target replaces the
        link, never the device (run as root, it would replace /dev/full)."""
        if not os.path.exists("/dev/full"):
            self.skipTest("no /dev/full on this system")
        for what, args in self.commands(self.path("full")).items():
            if what.startswith("demo"):
                continue  # a directory: below
            link = self.target(args)
            os.symlink("/dev/full", link)
            try:
                with self.subTest(what):
                    before = sorted(os.listdir(self.dir))
                    rc, err = run(args)
                    self.assertEqual(rc, 74, "%s: %d %s" % (what, rc, err))
                    self.assertIn("write failed", err)
                    self.assertTrue(os.path.islink(link), "the link was replaced")
                    self.assertEqual(sorted(os.listdir(self.dir)), before)
            finally:
                os.unlink(link)
        # demo's files
        d = self.path("demo_full")
        os.mkdir(d)
        os.symlink("/dev/full", os.path.join(d, "val.csv"))
        rc, err = run(["demo", "-o", d])
        self.assertEqual(rc, 74, err)
        self.assertEqual(sorted(os.listdir(d)), ["val.csv"])
        shutil.rmtree(d)
        self.assertTrue(stat.S_ISCHR(os.stat("/dev/full").st_mode))

    # ---- a read-only directory -----------------------------------------------

    def test_read_only_directory(self):
        as_user = None
        if os.geteuid() == 0:
            if not SETPRIV:
                self.skipTest("running as root without setpriv: a read-only "
                              "directory does not stop root's writes")
            as_user = NOBODY
        ro = self.path("ro")
        for what, args in self.commands(os.path.join(ro, "out.json")).items():
            with self.subTest(what):
                shutil.rmtree(ro, ignore_errors=True)
                os.mkdir(ro)
                before = self.seed_target(args, ro)
                if args[0] == "demo":
                    os.chmod(self.target(args), 0o555)
                os.chmod(ro, 0o555)
                try:
                    rc, err = run(args, user=as_user)
                finally:
                    os.chmod(ro, 0o755)
                    if args[0] == "demo":
                        os.chmod(self.target(args), 0o755)
                self.assertEqual(rc, 73, "%s: %d %s" % (what, rc, err))
                self.assertIn("cannot create", err)
                self.check_untouched(args, before)

    # ---- a missing directory -------------------------------------------------

    def test_missing_directory(self):
        missing = self.path("no/such/dir")
        for what, args in self.commands(os.path.join(missing, "out.json")).items():
            if what.startswith("demo"):
                continue  # demo makes its directory (mkdir -p)
            with self.subTest(what):
                rc, err = run(args)
                self.assertEqual(rc, 73, "%s: %d %s" % (what, rc, err))
                self.assertIn("no/such/dir", err)
                self.assertFalse(os.path.exists(self.path("no")))

    # ---- a file-size limit ---------------------------------------------------

    def test_file_size_limit(self):
        lim = self.path("lim")
        for what, args in self.commands(os.path.join(lim, "out.json")).items():
            with self.subTest(what):
                shutil.rmtree(lim, ignore_errors=True)
                os.mkdir(lim)
                before = self.seed_target(args, lim)
                # Every output here is larger than 64 bytes (a partial state
                # is ~2 kB, the smallest eval JSON ~3 kB).
                rc, err = run(args, preexec=fsize_limit(64))
                self.assertNotEqual(rc, -signal.SIGXFSZ,
                                    "%s: killed by SIGXFSZ" % what)
                self.assertEqual(rc, 74, "%s: %d %s" % (what, rc, err))
                self.assertIn("write failed", err)
                self.check_untouched(args, before)

    # ---- truncated inputs ----------------------------------------------------

    def test_truncated_inputs(self):
        cut = self.path("cut")
        os.makedirs(cut, exist_ok=True)
        z = np.arange(24, dtype="<f8").reshape(8, 3) / 7
        np.save(os.path.join(cut, "z.npy"), z)
        np.save(os.path.join(cut, "y.npy"), np.arange(8) % 3)
        with open(os.path.join(cut, "z.npy"), "rb") as f:
            whole = f.read()
        with open(self.csv, "rb") as f:
            csv = f.read()
        cases = [
            # (name, bytes, extra args, what the message must hold)
            ("z_cut.npy", whole[:-5], ["--labels", os.path.join(cut, "y.npy")],
             "z_cut.npy"),
            ("d.csv.gz", gzip.compress(csv)[:-4], [], "gzip"),
            ("d_cut.csv", csv[:csv.index(b"\n", 200) + 9], [], "d_cut.csv:"),
        ]
        for name, data, extra, needle in cases:
            with self.subTest(name):
                p = os.path.join(cut, name)
                with open(p, "wb") as f:
                    f.write(data)
                out = os.path.join(cut, "out.json")
                rc, err = run(["eval", p, "--json", "-o", out] + extra)
                self.assertEqual(rc, 65, "%s: %d %s" % (name, rc, err))
                self.assertIn(needle, err)
                self.assertIn(name, err)
                self.assertFalse(os.path.exists(out))
        # The CSV cut inside a row names its line.
        rc, err = run(["eval", os.path.join(cut, "d_cut.csv")])
        self.assertRegex(err, r"d_cut\.csv:\d+:")


if __name__ == "__main__":
    unittest.main()
