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
            write_private(path, &pin)?;
            Ok(pin)
        }
        Err(source) => Err(HsmError::Io { path: path.to_owned(), source }),
    }
}

/// Writes a file readable by its owner only (created with mode 0600, never widened).
pub(crate) fn write_private(path: &Path, contents: &str) -> Result<(), HsmError> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(contents.as_bytes()).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}
