//! `--user` / `--group` resolution. Names are looked up in `/etc/passwd` and
//! `/etc/group` read as plain text: that keeps the config module free of
//! libc calls and `unsafe`. The cost is that accounts served only by NSS
//! modules (LDAP, systemd-userdb) cannot be named -- a numeric id always
//! works, which is what the error message suggests.

use std::path::Path;

pub const PASSWD: &str = "/etc/passwd";
pub const GROUP: &str = "/etc/group";

/// Resolve a user or group given as a name or a number against a
/// colon-separated database whose first field is the name and third the id.
pub fn resolve(raw: &str, db: &Path, what: &str) -> Result<u32, String> {
    let t = raw.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u32>()
            .map_err(|_| format!("{what} id is too large"));
    }
    if t.is_empty() {
        return Err(format!("expected a {what} name or id"));
    }
    let text = std::fs::read_to_string(db).map_err(|e| {
        format!(
            "cannot read {}: {e}; give a numeric id instead",
            db.display()
        )
    })?;
    find_id(&text, t).ok_or_else(|| {
        format!(
            "no such {what} in {}; give a numeric id instead",
            db.display()
        )
    })
}

/// The id of `name` in passwd/group-format text.
pub fn find_id(text: &str, name: &str) -> Option<u32> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let mut fields = line.split(':');
            let n = fields.next()?;
            let _password = fields.next()?;
            let id = fields.next()?;
            if n == name {
                id.parse().ok()
            } else {
                None
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ids_in_database_text() {
        let text = "# comment\nroot:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nbroken\n";
        assert_eq!(find_id(text, "root"), Some(0));
        assert_eq!(find_id(text, "www-data"), Some(33));
        assert_eq!(find_id(text, "www"), None);
        assert_eq!(find_id(text, "broken"), None);
    }

    #[test]
    fn resolves_root_by_name_and_number() {
        assert_eq!(resolve("root", Path::new(PASSWD), "user"), Ok(0));
        assert_eq!(resolve("0", Path::new(PASSWD), "user"), Ok(0));
        assert_eq!(resolve("root", Path::new(GROUP), "group"), Ok(0));
        assert_eq!(resolve("1234", Path::new(GROUP), "group"), Ok(1234));
    }

    #[test]
    fn unknown_names_and_missing_files() {
        let e = resolve("no-such-user-corral", Path::new(PASSWD), "user").unwrap_err();
        assert_eq!(e, "no such user in /etc/passwd; give a numeric id instead");
        let e = resolve("root", Path::new("/nonexistent/passwd"), "user").unwrap_err();
        assert!(e.starts_with("cannot read /nonexistent/passwd"), "{e}");
        assert!(resolve("99999999999", Path::new(PASSWD), "user").is_err());
    }
}
