//! --user/--group/--umask as root: workers run as nobody:nogroup with the
//! umask, the master stays root, and sockets are bound before the drop (a
//! port below 1024 works).

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::client::{fetch, loopback};
use crate::common::{apps_dir, heavy, hostile_app, status_field};
use crate::harness::temp_dir;

#[test]
fn workers_drop_privileges_master_stays_root() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: privilege drop needs root (CI runs as root)");
        return;
    }
    let _g = heavy();
    // The app must be readable by nobody wherever the checkout lives.
    let dir = temp_dir("hostile-priv");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(
        apps_dir().join("hostile_app.py"),
        dir.path().join("hostile_app.py"),
    )
    .unwrap();
    // A privileged port, if nobody else holds it.
    let low = [81u16, 82, 83, 8]
        .into_iter()
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok());
    let bind = match low {
        Some(p) => format!("127.0.0.1:{p}"),
        None => {
            eprintln!("no free port below 1024 on 127.0.0.1: not checking the privileged bind");
            "127.0.0.1:0".to_string()
        }
    };
    // The workers run as nobody: the interpreter and the virtualenv must be
    // readable by them, as in a deployment (pyenv's /root is not).
    let srv = hostile_app()
        .installed_in(&crate::installed::deploy_venv())
        .chdir(dir.path())
        .bind(bind)
        .args([
            "-w", "2", "--user", "nobody", "--group", "nogroup", "--umask", "027",
        ])
        .start();
    if let Some(p) = low {
        assert_eq!(srv.port, p, "bound the privileged port");
    }
    let master_uid = status_field(srv.pid, "Uid").unwrap();
    assert_eq!(master_uid, vec![0, 0, 0, 0], "master must stay root");
    let workers = srv.wait_live_workers(2, Duration::from_secs(10));
    for w in &workers {
        assert_eq!(
            status_field(*w, "Uid").unwrap(),
            vec![65534; 4],
            "worker {w} uid"
        );
        assert_eq!(
            status_field(*w, "Gid").unwrap(),
            vec![65534; 4],
            "worker {w} gid"
        );
        let groups = status_field(*w, "Groups").unwrap_or_default();
        assert!(
            !groups.contains(&0),
            "worker {w} kept root's supplementary group: {groups:?}"
        );
        let umask = std::fs::read_to_string(format!("/proc/{w}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Umask:").map(|v| v.trim().to_string()));
        assert_eq!(umask.as_deref(), Some("0027"), "worker {w} umask");
    }
    // And Python sees the same from inside.
    let r = fetch(loopback(srv.port), "/ids", Duration::from_secs(5)).unwrap();
    assert_eq!(
        (r.status, r.text()),
        (200, "65534 65534 65534 65534 027".to_string())
    );
}
