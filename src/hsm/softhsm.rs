//! The embedded default HSM: a SoftHSMv2 token private to the data directory. First start
//! writes its config and generates the SO and user PINs into owner-only files; later starts
//! reuse them. SoftHSM reads its config path from SOFTHSM2_CONF, which the process sets
//! before any thread starts (see `main`).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::HsmError;

/// Paths and PINs of the managed SoftHSM token.
pub(crate) struct ManagedToken {
    pub(crate) conf: PathBuf,
    pub(crate) so_pin: String,
    pub(crate) user_pin: String,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HsmError + '_ {
    move |source| HsmError::Io { path: path.to_owned(), source }
}

/// Creates (or finds) `DIR/hsm/` with the token directory, `softhsm2.conf`, `so.pin` and
/// `user.pin`.
pub(crate) fn prepare(data_dir: &Path) -> Result<ManagedToken, HsmError> {
    let dir = data_dir.join("hsm");
    let tokens = dir.join("tokens");
    fs::create_dir_all(&tokens).map_err(io(&tokens))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
    let tokens = fs::canonicalize(&tokens).map_err(io(&tokens))?;
    let conf = dir.join("softhsm2.conf");
    let text = format!(
        "# Written by Strongroom: the SoftHSMv2 token of this data directory.\n\
         directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
        tokens.display()
    );
    if fs::read_to_string(&conf).ok().as_deref() != Some(text.as_str()) {
        write_private(&conf, &text)?;
    }
    Ok(ManagedToken {
        conf: fs::canonicalize(&conf).map_err(io(&conf))?,
        so_pin: read_or_create_pin(&dir.join("so.pin"))?,
        user_pin: read_or_create_pin(&dir.join("user.pin"))?,
    })
}

fn read_or_create_pin(path: &Path) -> Result<String, HsmError> {
    match fs::read_to_string(path) {
        Ok(pin) => Ok(pin.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pin = crate::util::random_hex(16);
            if create_private(path, &pin)? {
                return Ok(pin);
            }
            // Another process starting on this data directory made it first.
            let pin = fs::read_to_string(path).map_err(io(path))?;
            Ok(pin.trim().to_owned())
        }
        Err(source) => Err(HsmError::Io { path: path.to_owned(), source }),
    }
}

/// Writes a file readable by its owner only (created with mode 0600, never widened).
pub(crate) fn write_private(path: &Path, contents: &str) -> Result<(), HsmError> {
    let tmp = write_beside(path, contents)?;
    fs::rename(&tmp, path).map_err(io(path))
}

/// Like [`write_private`], unless `path` exists: false then, and it is left as it is.
/// Replicas started together on one data directory agree on the first one written.
fn create_private(path: &Path, contents: &str) -> Result<bool, HsmError> {
    let tmp = write_beside(path, contents)?;
    // A link, unlike a rename, fails if the name is taken.
    let made = match fs::hard_link(&tmp, path) {
        Ok(()) => true,
        // Taken (AlreadyExists, or another process won meanwhile).
        Err(_) if path.exists() => false,
        // A file system without links: a rename, the name being free.
        Err(_) => return fs::rename(&tmp, path).map(|()| true).map_err(io(path)),
    };
    let _ = fs::remove_file(&tmp);
    Ok(made)
}

/// `contents` in a new owner-only file beside `path`, under a name no other process
/// uses; returns that name.
fn write_beside(path: &Path, contents: &str) -> Result<PathBuf, HsmError> {
    let unique = format!("tmp.{}.{}", std::process::id(), crate::util::random_hex(4));
    let tmp = path.with_extension(unique);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    let written = f.write_all(contents.as_bytes()).and_then(|()| f.sync_all());
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(HsmError::Io { path: tmp, source });
    }
    Ok(tmp)
}
