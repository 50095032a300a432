//! SSH keys of the people who may push: the slipway user's `authorized_keys`, one line a key,
//! each with a forced command naming the key, so sshd only ever runs `slipway ssh-command`
//! (`dispatch.rs`), never a shell, and no forwarding or pty.

use crate::platform::access::Role;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::engine::user::AppUser;

/// Options on every key line (Dokku's set).
pub const RESTRICTIONS: &str = "no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty";

const KEY_TYPES: [&str; 7] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kind: String,
    pub blob: String,
}

impl PublicKey {
    /// Parses `TYPE BASE64 [comment]`; the blob must decode and name the same type.
    pub fn parse(line: &str) -> Result<PublicKey> {
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
            bail!("not an SSH public key: expected `TYPE BASE64 [comment]` on one line");
        };
        if !KEY_TYPES.contains(&kind) {
            bail!("unsupported key type {kind:?} (use {})", KEY_TYPES[..3].join(", "));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(blob)
            .map_err(|_| anyhow!("the key's data is not valid base64"))?;
        let inner = bytes
            .get(4..)
            .and_then(|rest| {
                let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
                rest.get(..len)
            })
            .ok_or_else(|| anyhow!("the key's data is truncated"))?;
        if inner != kind.as_bytes() {
            bail!("the key's data says {:?} but its type says {kind:?}", String::from_utf8_lossy(inner));
        }
        Ok(PublicKey { kind: kind.to_string(), blob: blob.to_string() })
    }

    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        let bytes = base64::engine::general_purpose::STANDARD.decode(&self.blob).unwrap_or_default();
        let digest = Sha256::digest(bytes);
        format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest))
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
}

/// The authorized_keys of the git user.
pub struct AuthorizedKeys {
    pub path: PathBuf,
    pub owner: Option<AppUser>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub key: PublicKey,
    pub role: Role,
}

impl AuthorizedKeys {
    pub fn for_user(user: &str) -> Result<AuthorizedKeys> {
        let owner = AppUser::lookup(user)
            .ok_or_else(|| anyhow!("there is no user {user:?}; create it with `slipway install --user {user}`"))?;
        let home = home_of(user)?;
        Ok(AuthorizedKeys { path: home.join(".ssh/authorized_keys"), owner: Some(owner) })
    }

    pub fn entries(&self) -> Result<Vec<Entry>> {
        Ok(self.read()?.lines().filter_map(parse_line).collect())
    }

    /// The file's text, never through a symlink (root runs this on the git user's files).
    fn read(&self) -> Result<String> {
        match crate::engine::fsutil::read_no_follow(&self.path, u64::MAX) {
            Ok(text) => Ok(text.unwrap_or_default()),
            Err(e) if crate::engine::fsutil::is_link_error(&e) => bail!(
                "{} is a symlink: slipway neither reads nor writes through it; replace it with a plain file",
                self.path.display()
            ),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.path.display())),
        }
    }

    /// The `.ssh` directory, made when missing; refused when it is a symlink or not a directory.
    fn dir(&self) -> Result<&Path> {
        let dir = self.path.parent().context("authorized_keys has no directory")?;
        // Another command may create it at the same moment: that one's directory is as good.
        if let Err(e) = std::fs::create_dir(dir) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(e).with_context(|| format!("cannot create {}", dir.display()));
            }
        }
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!(
                "{} is a symlink or not a directory: slipway does not write through it; replace it with a directory",
                dir.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
        }
        Ok(dir)
    }

    /// Runs `f` holding an exclusive lock on the key file, so concurrent changes never lose a
    /// line (each is a read-modify-write).
    fn locked<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let dir = self.dir()?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.join(".slipway-keys.lock"))
            .context("cannot open the key file's lock (is it a symlink?)")?;
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error()).context("cannot lock authorized_keys");
        }
        f()
    }

    pub fn add(&self, name: &str, key_text: &str, command: &str) -> Result<Entry> {
        self.locked(|| self.add_locked(name, key_text, command))
    }

    fn add_locked(&self, name: &str, key_text: &str, command: &str) -> Result<Entry> {
        if !valid_name(name) {
            bail!("{name:?} is not a valid key name: letters, digits, '-', '_', '.', '@'");
        }
        let lines: Vec<&str> =
            key_text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
        let [line] = lines.as_slice() else {
            bail!("expected exactly one public key, found {}", lines.len());
        };
        let key = PublicKey::parse(line)?;
        let entries = self.entries()?;
        if let Some(e) = entries.iter().find(|e| e.name == name) {
            bail!(
                "a key named {name:?} exists already ({}); remove it first with `slipway ssh-keys:remove {name}`",
                e.key.fingerprint()
            );
        }
        if let Some(e) = entries.iter().find(|e| e.key.blob == key.blob) {
            bail!("this key is already added, as {:?}", e.name);
        }
        let mut text = self.read()?;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text += &format!("command=\"{command} {name}\",{RESTRICTIONS} {} {} slipway:{name}\n", key.kind, key.blob);
        self.write(&text)?;
        Ok(Entry { name: name.to_string(), key, role: role_of(command) })
    }

    pub fn remove(&self, name: &str) -> Result<()> {
        self.locked(|| self.remove_locked(name))
    }

    fn remove_locked(&self, name: &str) -> Result<()> {
        let text = self.read()?;
        let kept: Vec<&str> = text.lines().filter(|l| parse_line(l).is_none_or(|e| e.name != name)).collect();
        if kept.len() == text.lines().count() {
            bail!("there is no key named {name:?} (see `slipway ssh-keys:list`)");
        }
        self.write(&(kept.join("\n") + if kept.is_empty() { "" } else { "\n" }))
    }

    /// Atomically: a temp file in the same directory, renamed over the old one.
    /// Never through a symlink: the directory is checked, the temp file is new (O_EXCL), and
    /// the rename replaces a name, not what it points at.
    fn write(&self, text: &str) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let dir = self.dir()?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        let tmp = dir.join(format!(".authorized_keys.slipway-{}", crate::units::unique_id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        if let Some(u) = &self.owner {
            u.chown(dir)?;
            u.chown(&tmp)?;
            u.chown(&dir.join(".slipway-keys.lock"))?;
        }
        std::fs::rename(&tmp, &self.path).with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// A line slipway wrote: `command="... NAME",OPTIONS TYPE BLOB slipway:NAME`.
fn parse_line(line: &str) -> Option<Entry> {
    let rest = line.strip_prefix("command=\"")?;
    let (command, rest) = rest.split_once('"')?;
    let name = command.rsplit(' ').next()?.to_string();
    let mut fields = rest.trim_start_matches(',').split_whitespace().skip(1);
    let kind = fields.next()?.to_string();
    let blob = fields.next()?.to_string();
    Some(Entry { name, key: PublicKey { kind, blob }, role: role_of(command) })
}

/// The role a forced command gives its key (`ssh-command --role developer NAME`); keys added
/// before roles existed are admins, as every Dokku key is.
fn role_of(command: &str) -> Role {
    if command.split(' ').collect::<Vec<_>>().windows(2).any(|w| w == ["--role", "developer"]) {
        Role::Developer
    } else {
        Role::Admin
    }
}

pub fn home_of(user: &str) -> Result<PathBuf> {
    let cname = std::ffi::CString::new(user)?;
    // SAFETY: getpwnam's result is read at once.
    unsafe {
        let pw = libc::getpwnam(cname.as_ptr());
        if pw.is_null() {
            bail!("there is no user {user:?}");
        }
        let dir = std::ffi::CStr::from_ptr((*pw).pw_dir).to_string_lossy().into_owned();
        Ok(PathBuf::from(dir))
    }
}

pub fn read_key_source(source: Option<&Path>) -> Result<String> {
    match source {
        None => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            Ok(s)
        }
        Some(p) if p == Path::new("-") => read_key_source(None),
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9mJ0bvrN8qXrS6Ptq2iW9T2zQ1m2nWxXrVdQmZm5Fz me@host";

    #[test]
    fn parses_and_refuses_malformed_keys() {
        let k = PublicKey::parse(ED).unwrap();
        assert_eq!(k.kind, "ssh-ed25519");
        assert!(k.fingerprint().starts_with("SHA256:"));
        assert!(PublicKey::parse("ssh-ed25519").is_err());
        assert!(PublicKey::parse("ssh-dss AAAA").unwrap_err().to_string().contains("unsupported key type"));
        assert!(PublicKey::parse("ssh-ed25519 !!!notbase64").unwrap_err().to_string().contains("base64"));
        // An ed25519 blob labelled as RSA.
        let lying = ED.replacen("ssh-ed25519", "ssh-rsa", 1);
        assert!(PublicKey::parse(&lying).unwrap_err().to_string().contains("its type says"));
    }

    #[test]
    fn concurrent_adds_lose_no_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".ssh/authorized_keys");
        // Eight different valid keys: the ed25519 blob with its last byte varied.
        let blob = ED.split_whitespace().nth(1).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD.decode(blob).unwrap();
        let threads: Vec<_> = (0..8u8)
            .map(|i| {
                let path = path.clone();
                let mut b = bytes.clone();
                *b.last_mut().unwrap() = i;
                let key = format!("ssh-ed25519 {}", base64::engine::general_purpose::STANDARD.encode(&b));
                std::thread::spawn(move || {
                    let keys = AuthorizedKeys { path, owner: None };
                    keys.add(&format!("k{i}"), &key, "x").unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let keys = AuthorizedKeys { path, owner: None };
        assert_eq!(keys.entries().unwrap().len(), 8);
    }

    #[test]
    fn add_list_remove_with_duplicates_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = AuthorizedKeys { path: dir.path().join(".ssh/authorized_keys"), owner: None };
        keys.add("alice", ED, "/usr/bin/slipway ssh-command").unwrap();
        assert!(keys.add("alice", ED, "x").unwrap_err().to_string().contains("exists already"));
        assert!(keys.add("bob", ED, "x").unwrap_err().to_string().contains("already added, as \"alice\""));
        assert!(keys.add("bad name", ED, "x").is_err());
        assert!(keys.add("two", &format!("{ED}\n{ED}"), "x").unwrap_err().to_string().contains("exactly one"));
        let text = std::fs::read_to_string(&keys.path).unwrap();
        assert!(text.starts_with("command=\"/usr/bin/slipway ssh-command alice\",no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty ssh-ed25519 "), "{text}");
        assert_eq!(keys.entries().unwrap().len(), 1);
        keys.remove("alice").unwrap();
        assert!(keys.entries().unwrap().is_empty());
        assert!(keys.remove("alice").is_err());
    }

    #[test]
    fn keys_are_never_read_or_written_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("root-only");
        std::fs::write(&secret, "secret line\n").unwrap();
        // authorized_keys pointing at another file: neither read nor written.
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink(&secret, dir.path().join("a/authorized_keys")).unwrap();
        let keys = AuthorizedKeys { path: dir.path().join("a/authorized_keys"), owner: None };
        assert!(keys.add("alice", ED, "x").unwrap_err().to_string().contains("is a symlink"));
        // .ssh pointing at another directory: nothing is created there, its mode is unchanged.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join(".ssh")).unwrap();
        let keys = AuthorizedKeys { path: dir.path().join(".ssh/authorized_keys"), owner: None };
        assert!(keys.add("alice", ED, "x").unwrap_err().to_string().contains("is a symlink or not a directory"));
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret line\n");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        use std::os::unix::fs::PermissionsExt;
        assert_ne!(std::fs::metadata(&elsewhere).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
