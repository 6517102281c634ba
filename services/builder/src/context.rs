//! The build context: the code's files (minus `.dockerignore`d ones and VCS folders)
//! with the config repo's files laid over them, streamed to the engine as a tar.
//! Symlinks are stored as symlinks, never followed, so nothing outside the tree leaks in.

use crate::dockerignore::DockerIgnore;
use crate::error::BuildError;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// What goes into the context: files by their path inside it.
pub struct Context {
    /// Relative path → file on disk (later layers already applied).
    entries: BTreeMap<String, PathBuf>,
}

impl Context {
    /// The code folder with `overlay` (context path → file) on top.
    pub fn assemble(
        code: &Path,
        overlay: BTreeMap<String, PathBuf>,
        dockerfile: &str,
    ) -> Result<Self, BuildError> {
        let ignore = std::fs::read_to_string(code.join(".dockerignore"))
            .map(|t| DockerIgnore::parse(&t))
            .unwrap_or_else(|_| DockerIgnore::parse(""));
        let mut entries = BTreeMap::new();
        walk(code, code, &ignore, dockerfile, &mut entries)?;
        entries.extend(overlay);
        if !entries.contains_key(dockerfile) {
            return Err(BuildError::NoDockerfile(dockerfile.to_owned()));
        }
        Ok(Self { entries })
    }

    /// Stream the tar: written on a blocking thread, sent in chunks.
    pub fn into_tar_stream(self) -> impl futures_util::Stream<Item = Bytes> + Send + 'static {
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        tokio::task::spawn_blocking(move || {
            let mut tar = tar::Builder::new(ChunkWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
            });
            tar.follow_symlinks(false);
            for (rel, path) in &self.entries {
                if tar.append_path_with_name(path, rel).is_err() {
                    return; // the receiver is gone or the file vanished: the build fails visibly
                }
            }
            if let Ok(mut w) = tar.into_inner() {
                let _ = w.flush();
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

const CHUNK: usize = 256 * 1024;

struct ChunkWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
            self.tx
                .blocking_send(chunk)
                .map_err(|_| std::io::Error::other("build context receiver closed"))?;
        }
        Ok(())
    }
}

fn walk(
    root: &Path,
    dir: &Path,
    ignore: &DockerIgnore,
    dockerfile: &str,
    out: &mut BTreeMap<String, PathBuf>,
) -> Result<(), BuildError> {
    let read = std::fs::read_dir(dir)
        .map_err(|e| BuildError::Workspace(format!("cannot read {}: {e}", dir.display())))?;
    for entry in read {
        let entry = entry.map_err(|e| BuildError::Workspace(e.to_string()))?;
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        if rel == ".svn" || rel == ".git" {
            continue;
        }
        // Docker sends the Dockerfile and .dockerignore even when ignored.
        if ignore.excludes(&rel) && rel != dockerfile && rel != ".dockerignore" {
            continue;
        }
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| BuildError::Workspace(e.to_string()))?;
        out.insert(rel, path.clone());
        if meta.is_dir() {
            walk(root, &path, ignore, dockerfile, out)?;
        }
    }
    Ok(())
}
