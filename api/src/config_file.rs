//! The configuration file the gateway runs, edited by the operator's routes: one edit at a
//! time, each checked as `ispmux check` checks a file, written atomically and applied by
//! the same reload as `POST /v1/reload`; a reload the gateway refuses puts the file back.

use std::io::Write;
use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use ispmux_conf::ConfError;
use ispmux_gateway::{ControlAnswer, ControlCommand};
use serde_json::Value as Json;
use toml_edit::DocumentMut;

use crate::confedit::Located;
use crate::error::{ApiError, ConfigProblem};
use crate::state::{blocking, AppState};

/// The file and the lock that keeps edits one at a time.
pub struct ConfigFile {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

/// What an edit did.
pub struct Edited<T> {
    /// What the edit returned.
    pub value: T,
    /// The gateway's answer to the reload (`ispmux ctl --json reload`'s); null when the
    /// edit left the file as it was and nothing was reloaded.
    pub reload: Json,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> ApiError {
    ApiError::internal(format!("{what} {}: {e}", path.display()))
}

fn parse(text: &str, path: &Path) -> Result<DocumentMut, ApiError> {
    text.parse().map_err(|e| {
        ApiError::new(
            StatusCode::CONFLICT,
            "configuration file",
            format!("{} does not parse; fix it by hand: {e}", path.display()),
        )
    })
}

/// `path` with `suffix` added to its file name.
fn beside(path: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let name = path.file_name().map_or_else(
        || "ispmux.toml".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    path.with_file_name(format!("{prefix}{name}{suffix}"))
}

/// Writes `text` to `tmp` (the mode of `like`), flushed to the disk.
fn write_synced(tmp: &Path, text: &str, like: &Path) -> Result<(), ApiError> {
    let mut f = std::fs::File::create(tmp).map_err(|e| io("creating", tmp, e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| io("writing", tmp, e))?;
    if let Ok(m) = std::fs::metadata(like) {
        std::fs::set_permissions(tmp, m.permissions()).map_err(|e| io("chmod", tmp, e))?;
    }
    Ok(())
}

/// Moves `tmp` over `path` and flushes the directory: a crash leaves the old file or the
/// new one, never half of either.
fn install(tmp: &Path, path: &Path) -> Result<(), ApiError> {
    std::fs::rename(tmp, path).map_err(|e| io("renaming to", path, e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// The problems of a refused file, their fields named by `at`.
fn problems(e: &ConfError, at: &Located) -> Vec<ConfigProblem> {
    e.problems()
        .iter()
        .map(|p| ConfigProblem {
            field: at.field(&p.key),
            key: p.key.clone(),
            line: p.line,
            column: p.column,
            message: p.message.clone(),
        })
        .collect()
}

impl ConfigFile {
    /// The file at `path` (the one the gateway was started from).
    pub fn new(path: PathBuf) -> Self {
        ConfigFile {
            path,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Holds edits off while the caller reloads the file itself (`POST /v1/reload`), so a
    /// reload never applies an edit that is about to be put back.
    pub async fn hold(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.lock.lock().await
    }

    /// The file's document as it is now.
    pub async fn read(&self) -> Result<DocumentMut, ApiError> {
        let path = self.path.clone();
        blocking(move || {
            let text = std::fs::read_to_string(&path).map_err(|e| io("reading", &path, e))?;
            parse(&text, &path)
        })
        .await
    }

    /// Applies `edit` to the file's document: the new file is checked as `ispmux check`
    /// checks one (refused with its problems, their fields named by the [`Located`] the
    /// edit returns), written atomically (the previous one kept as `FILE.bak`) and
    /// reloaded; a reload the gateway refuses or does not answer puts the previous file
    /// back and is the answer.
    pub async fn edit<T: Send + 'static>(
        &self,
        st: &AppState,
        edit: impl FnOnce(&mut DocumentMut) -> Result<(T, Located), ApiError> + Send + 'static,
    ) -> Result<Edited<T>, ApiError> {
        let _one_at_a_time = self.lock.lock().await;
        let path = self.path.clone();
        let prepared = blocking(move || {
            let old = std::fs::read_to_string(&path).map_err(|e| io("reading", &path, e))?;
            let mut doc = parse(&old, &path)?;
            let (value, at) = edit(&mut doc)?;
            let new = doc.to_string();
            if new == old {
                return Ok((value, None));
            }
            // Beside the file: the subscribers CSV it names is found as from the file, and
            // the rename stays on one file system.
            let tmp = beside(&path, ".", ".api-new");
            let installed = write_synced(&tmp, &new, &path)
                .and_then(|()| {
                    ispmux_conf::check(&tmp).map_err(|e| match e {
                        ConfError::Io { .. } => ApiError::internal(e),
                        ConfError::Invalid { .. } => ApiError::config(problems(&e, &at)),
                    })
                })
                .and_then(|_| {
                    let bak = beside(&path, "", ".bak");
                    std::fs::write(&bak, &old).map_err(|e| io("writing", &bak, e))
                })
                .and_then(|()| install(&tmp, &path));
            if installed.is_err() {
                // Nothing of a refused edit stays behind.
                let _ = std::fs::remove_file(&tmp);
            }
            installed.map(|()| (value, Some(old)))
        })
        .await?;
        let (value, old) = match prepared {
            (value, Some(old)) => (value, old),
            (value, None) => {
                return Ok(Edited {
                    value,
                    reload: Json::Null,
                })
            }
        };
        match crate::routes::ask(st, ControlCommand::Reload).await {
            Ok(a @ ControlAnswer::Reloaded(_)) => Ok(Edited {
                value,
                reload: a.to_json(),
            }),
            other => {
                self.restore(old).await?;
                Err(match other {
                    Err(e) => e,
                    Ok(a) => ApiError::internal(format!("reload answered {a:?}")),
                })
            }
        }
    }

    /// Puts `old` back as the file.
    async fn restore(&self, old: String) -> Result<(), ApiError> {
        let path = self.path.clone();
        blocking(move || {
            let tmp = beside(&path, ".", ".api-old");
            write_synced(&tmp, &old, &path)?;
            install(&tmp, &path)?;
            tracing::warn!(file = %path.display(), "api: the reload was refused; the file is back as it was");
            Ok(())
        })
        .await
    }
}
