//! A real systemd booted as PID 1 of a private PID + mount namespace, for
//! the end-to-end tests.
//!
//! The namespace shares the host's disk, so `boot-systemd` puts /run and the
//! journal on tmpfs and masks every unit the host's targets would start;
//! only journald runs. [`Systemd`] is a guard: dropping it (also while
//! unwinding from a panic) powers the namespace off, and kills the
//! `unshare` process by its pid if it lingers. `unshare --kill-child` takes
//! the namespace's PID 1 (and with it every process inside) down with it,
//! and the parent-death signal set on `unshare` covers a test process that
//! dies without unwinding.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Systemd {
    unshare: Child,
    /// systemd's pid as seen from outside the namespace (0 until known).
    pub pid: i32,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn boot_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/systemd/boot-systemd")
}

impl Systemd {
    /// Boot, and wait until `systemctl is-system-running` says `running`.
    /// Panics with a reason when this machine cannot do it.
    pub fn boot() -> Systemd {
        let uid = nix::unistd::geteuid();
        assert!(
            uid.is_root(),
            "the systemd end-to-end tests boot systemd in a private PID + mount namespace \
             and must run as root (uid is {uid})"
        );
        for tool in [
            "/usr/bin/unshare",
            "/usr/bin/nsenter",
            "/lib/systemd/systemd",
        ] {
            assert!(
                Path::new(tool).exists(),
                "the systemd end-to-end tests need {tool} (util-linux and systemd packages)"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("corral-sdboot-")
            .tempdir()
            .expect("temp dir");
        let log = dir.path().join("boot.log");
        let out = std::fs::File::create(&log).expect("boot log");
        let target = format!("corral-test-{}", std::process::id());
        let mut cmd = Command::new("/usr/bin/unshare");
        cmd.args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--mount-proc",
            "--propagation",
            "private",
        ])
        .arg(boot_script())
        .arg(&target)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
        // SAFETY: setsid and prctl are async-signal-safe and touch only the
        // child between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let unshare = cmd.spawn().expect("cannot run unshare");
        // From here on the guard exists: any panic below powers off.
        let mut sd = Systemd {
            unshare,
            pid: 0,
            log,
            _dir: dir,
        };
        let upid = sd.unshare.id();
        sd.pid = sd.wait_or_explain("systemd to start as PID 1 of the namespace", 20, |_| {
            let kids =
                std::fs::read_to_string(format!("/proc/{upid}/task/{upid}/children")).ok()?;
            let pid: i32 = kids.split_whitespace().next()?.parse().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (comm.trim() == "systemd").then_some(pid)
        });
        sd.wait_or_explain("`systemctl is-system-running` to say running", 60, |sd| {
            let out = sd.run(&["systemctl", "is-system-running"]);
            (String::from_utf8_lossy(&out.stdout).trim() == "running").then_some(())
        });
        sd
    }

    fn wait_or_explain<T>(
        &mut self,
        what: &str,
        secs: u64,
        mut cond: impl FnMut(&Self) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = cond(self) {
                return v;
            }
            if let Ok(Some(st)) = self.unshare.try_wait() {
                panic!(
                    "systemd could not boot in a namespace ({st}) while waiting for {what}; \
                     boot log:\n{}",
                    self.boot_log()
                );
            }
            if Instant::now() >= deadline {
                let state = if self.pid > 0 {
                    let out = self.run(&["systemctl", "list-units", "--failed", "--no-pager"]);
                    String::from_utf8_lossy(&out.stdout).into_owned()
                } else {
                    String::new()
                };
                panic!(
                    "timed out after {secs} s waiting for {what}; boot log:\n{}\n{state}",
                    self.boot_log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn boot_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run a command inside the namespace.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run nsenter")
    }

    fn command(&self, args: &[&str]) -> Command {
        assert!(self.pid > 0, "systemd is not up");
        let mut c = Command::new("/usr/bin/nsenter");
        c.args(["-t", &self.pid.to_string(), "-p", "-m", "--"])
            .args(args);
        c
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "`{}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Write a file inside the namespace (e.g. under its private /run).
    pub fn write(&self, path: &str, content: &str) {
        let mut child = self
            .command(&[
                "sh",
                "-c",
                "mkdir -p \"$(dirname \"$1\")\" && cat > \"$1\"",
                "sh",
                path,
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("cannot run nsenter");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(content.as_bytes())
            .expect("write to nsenter");
        let st = child.wait().expect("nsenter");
        assert!(st.success(), "writing {path} in the namespace failed");
    }

    /// `systemctl show -p PROP` for one property.
    pub fn prop(&self, unit: &str, prop: &str) -> String {
        let out = self.ok(&["systemctl", "show", "-p", prop, "--value", unit]);
        out.trim_end_matches('\n').to_string()
    }

    /// The journal of a unit as JSON objects.
    pub fn journal(&self, unit: &str, matches: &[&str]) -> Vec<serde_json::Value> {
        let mut args = vec!["journalctl", "-u", unit, "-o", "json", "--no-pager"];
        args.extend_from_slice(matches);
        let out = self.run(&args);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        if self.pid > 0 {
            if let Ok(mut c) = self
                .command(&["systemctl", "poweroff"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                let deadline = Instant::now() + Duration::from_secs(10);
                while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                if c.try_wait().ok().flatten().is_none() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.unshare.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.unshare.try_wait().ok().flatten().is_none() {
            eprintln!(
                "systemd namespace did not power off in time; killing unshare (pid {})",
                self.unshare.id()
            );
            // --kill-child: systemd, PID 1 of the namespace, dies with it,
            // and every process in the namespace with systemd.
            let _ = self.unshare.kill();
            let _ = self.unshare.wait();
        }
    }
}
