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
    /// Relative path → content sent instead of the file's (the Dockerfile with Ferry's
    /// labels).
    inline: BTreeMap<String, Vec<u8>>,
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
        Ok(Self {
            entries,
            inline: BTreeMap::new(),
        })
    }

    /// Append `labels` to the Dockerfile as one `LABEL` instruction. The engine's own
    /// `labels` option costs a build step per label in the classic builder (a container
    /// created and committed for each: ~80 ms apiece here); one instruction is one step.
    /// `false` (nothing changed) when the Dockerfile is not a plain file, ends inside a
    /// line continuation, or a value holds a character the Dockerfile would interpret
    /// (quotes, escapes, `$`): then the caller passes the labels to the engine instead.
    pub fn label_in_dockerfile(
        &mut self,
        dockerfile: &str,
        labels: &std::collections::HashMap<String, String>,
    ) -> bool {
        let plain =
            |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_control() || "\"\\`$".contains(c));
        if labels
            .iter()
            .any(|(k, v)| !plain(k) || (!v.is_empty() && !plain(v)))
        {
            return false;
        }
        let Some(path) = self.entries.get(dockerfile) else {
            return false;
        };
        let is_file = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file());
        let Some(mut text) = is_file.then(|| std::fs::read(path).ok()).flatten() else {
            return false;
        };
        let last = String::from_utf8_lossy(&text)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim_end().to_owned())
            .unwrap_or_default();
        if last.ends_with(['\\', '`']) {
            return false;
        }
        let mut sorted: Vec<_> = labels.iter().collect();
        sorted.sort();
        let mut line = String::from("\nLABEL");
        for (k, v) in sorted {
            line.push_str(&format!(" \"{k}\"=\"{v}\""));
        }
        line.push('\n');
        text.extend_from_slice(line.as_bytes());
        self.inline.insert(dockerfile.to_owned(), text);
        true
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
                let appended = match self.inline.get(rel) {
                    Some(data) => {
                        let mut header = tar::Header::new_gnu();
                        header.set_size(data.len() as u64);
                        header.set_mode(0o644);
                        header.set_entry_type(tar::EntryType::Regular);
                        tar.append_data(&mut header, rel, data.as_slice())
                    }
                    None => tar.append_path_with_name(path, rel),
                };
                if appended.is_err() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn context_with(dockerfile: &str) -> (tempfile::TempDir, Context) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        let c = Context::assemble(dir.path(), BTreeMap::new(), "Dockerfile").unwrap();
        (dir, c)
    }

    #[test]
    fn labels_become_one_instruction_at_the_end_of_the_dockerfile() {
        let (_dir, mut c) = context_with("FROM scratch\nCOPY a /a");
        let labels = HashMap::from([
            ("io.ferry.run-id".to_owned(), "0f3c".to_owned()),
            (
                "org.opencontainers.image.source".to_owned(),
                "svn://h/r".to_owned(),
            ),
        ]);
        assert!(c.label_in_dockerfile("Dockerfile", &labels));
        assert_eq!(
            String::from_utf8(c.inline["Dockerfile"].clone()).unwrap(),
            "FROM scratch\nCOPY a /a\nLABEL \"io.ferry.run-id\"=\"0f3c\" \
             \"org.opencontainers.image.source\"=\"svn://h/r\"\n"
        );
    }

    #[test]
    fn what_the_dockerfile_would_interpret_goes_to_the_engine_instead() {
        let (_dir, mut c) = context_with("FROM scratch\n");
        let odd = HashMap::from([("k".to_owned(), "a$HOME\"b".to_owned())]);
        assert!(!c.label_in_dockerfile("Dockerfile", &odd));
        let (_dir, mut c) = context_with("FROM scratch\nRUN true \\\n");
        let fine = HashMap::from([("k".to_owned(), "v".to_owned())]);
        assert!(!c.label_in_dockerfile("Dockerfile", &fine));
        assert!(c.inline.is_empty());
    }
}
