//! Backup and restore of a PostgreSQL store with PostgreSQL's own tools (`pg_dump`,
//! `pg_restore`, Debian package postgresql-client): a consistent custom-format dump while
//! the replicas run, and a restore that replaces the schema's contents. A password in the
//! connection URL reaches the tools in their environment (PGPASSWORD), not on their
//! command line for `ps` to show.

use std::path::Path;
use std::process::Command;

use super::StoreError;

/// Runs `tool` with `args` (and `input` on its standard input) against the database at
/// `url`; its standard output.
fn run(
    tool: &str,
    args: &[&std::ffi::OsStr],
    url: &str,
    input: Option<&[u8]>,
) -> Result<Vec<u8>, StoreError> {
    use std::io::Write as _;
    use std::process::Stdio;
    let missing = |e: std::io::Error| {
        StoreError::Tool(format!("{tool} (apt-get install postgresql-client): {e}"))
    };
    let (url, password) = split_password(url);
    let mut command = Command::new(tool);
    if !url.is_empty() {
        command.arg(format!("--dbname={url}"));
    }
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let mut child = command
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(missing)?;
    // Fed from another thread, so a tool that writes while it reads cannot stall on a full
    // pipe.
    let feeder = match (input, child.stdin.take()) {
        (Some(input), Some(mut stdin)) => {
            let input = input.to_vec();
            Some(std::thread::spawn(move || stdin.write_all(&input)))
        }
        _ => None,
    };
    let out = child.wait_with_output().map_err(missing)?;
    if let Some(feeder) = feeder {
        feeder
            .join()
            .map_err(|_| StoreError::Tool(format!("{tool}: writing its input failed")))?
            .map_err(missing)?;
    }
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(StoreError::Tool(format!("{tool} failed: {}", why.trim())));
    }
    Ok(out.stdout)
}

/// The URL without its password, and the password (percent-decoded).
fn split_password(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else { return (url.to_owned(), None) };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_owned(), None);
    };
    let Some((user, password)) = userinfo.split_once(':') else {
        return (url.to_owned(), None);
    };
    let mut decoded = Vec::with_capacity(password.len());
    let bytes = password.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| password.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(b) => {
                decoded.push(b);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    let password = String::from_utf8_lossy(&decoded).into_owned();
    (format!("{scheme}://{user}@{host}{tail}"), Some(password))
}

/// Writes a custom-format dump of the database at `url` to `path`.
pub(crate) fn dump(url: &str, path: &Path) -> Result<(), StoreError> {
    let args =
        ["--format=custom".as_ref(), "--no-owner".as_ref(), "--file".as_ref(), path.as_os_str()];
    run("pg_dump", &args, url, None).map(|_| ())
}

/// One sealed object of the dump at `path` (its id and sealed bytes), read without
/// touching any database, so the dump can be checked against the HSM before it replaces
/// anything.
pub(crate) fn sealed_object_in(path: &Path) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    let args =
        ["--data-only".as_ref(), "--table=objects".as_ref(), "--file=-".as_ref(), path.as_os_str()];
    // Without --dbname, pg_restore prints SQL and connects to nothing.
    let sql = run("pg_restore", &args, "", None)?;
    Ok(first_sealed(&String::from_utf8_lossy(&sql)))
}

/// The id and sealed material of the first row with material in a `COPY objects (...)
/// FROM stdin;` block (tab-separated, bytea as `\\x` hex, NULL as `\N`).
fn first_sealed(sql: &str) -> Option<(String, Vec<u8>)> {
    let mut lines = sql.lines();
    let header = lines.find(|l| l.starts_with("COPY ") && l.contains("objects"))?;
    let columns = header.split_once('(')?.1.split_once(')')?.0;
    let columns: Vec<&str> = columns.split(',').map(|c| c.trim().trim_matches('"')).collect();
    let id_at = columns.iter().position(|c| *c == "id")?;
    let sealed_at = columns.iter().position(|c| *c == "sealed_material")?;
    for row in lines.take_while(|l| *l != "\\.") {
        let fields: Vec<&str> = row.split('\t').collect();
        let (Some(id), Some(sealed)) = (fields.get(id_at), fields.get(sealed_at)) else { continue };
        if let Some(bytes) = sealed.strip_prefix("\\\\x").and_then(|h| hex::decode(h).ok()) {
            return Some(((*id).to_owned(), bytes));
        }
    }
    None
}

/// Replaces the contents of the database at `url` with the dump at `path`, in one
/// transaction: pg_restore writes the SQL, psql runs it (stopping at the first error).
pub(crate) fn restore(url: &str, path: &Path) -> Result<(), StoreError> {
    let args = [
        "--clean".as_ref(),
        "--if-exists".as_ref(),
        "--no-owner".as_ref(),
        "--single-transaction".as_ref(),
        "--file=-".as_ref(),
        path.as_os_str(),
    ];
    let sql = run("pg_restore", &args, "", None)?;
    let psql = ["-v".as_ref(), "ON_ERROR_STOP=1".as_ref(), "-q".as_ref(), "-X".as_ref()];
    run("psql", &psql, url, Some(&sql)).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_leave_the_url() {
        let (url, password) =
            split_password("postgres://kms:p%40ss:w@db.internal:5432/kms?sslmode=require");
        assert_eq!(url, "postgres://kms@db.internal:5432/kms?sslmode=require");
        assert_eq!(password.as_deref(), Some("p@ss:w"));
        assert_eq!(split_password("postgres://postgres@127.0.0.1/test").1, None);
    }

    #[test]
    fn finds_a_sealed_row_in_a_copy_block() {
        let sql = "SET x = 1;\nCOPY public.objects (id, object_type, sealed_material, owner) FROM stdin;\n\
                   a\t2\t\\N\talice\nb\t2\t\\\\x01ff\talice\n\\.\n";
        assert_eq!(first_sealed(sql), Some(("b".to_owned(), vec![0x01, 0xff])));
        assert_eq!(
            first_sealed("COPY public.objects (id, sealed_material) FROM stdin;\n\\.\n"),
            None
        );
    }
}
