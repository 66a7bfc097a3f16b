//! The state file's writes and which write a reader saw.
//!
//! Every write replaces the file (a new file renamed over it), so the file
//! behind a descriptor never changes and another inode at the path means
//! another write. A reader that must notice later writes (the agent) keeps
//! the [`Version`] its read returned: it holds the file it read open, so
//! that the inode number cannot be given to a later write's file, and it
//! was taken from the same descriptor the bytes came from, so no write can
//! slip in between reading and remembering (as it could between a read and
//! a later `stat` of the path).

use std::{
    fs,
    io::{self, Read},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

/// Which write of a file a read saw.
#[derive(Debug)]
pub struct Version {
    path: PathBuf,
    /// The file as read, kept open.
    held: fs::File,
}

impl Version {
    /// Whether the file at the path is still the one that was read (false
    /// when it was written since, or removed).
    pub fn is_current(&self) -> bool {
        let (Ok(now), Ok(read)) = (fs::metadata(&self.path), self.held.metadata()) else { return false };
        now.dev() == read.dev() && now.ino() == read.ino()
    }
}

/// Replaces `path` with a file holding `bytes` (written beside it, then
/// renamed over it: readers see the old content or the new, whole).
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, bytes)?;
    fs::rename(tmp, path)
}

/// The content of `path` and the [`Version`] it was read at; `None` when
/// there is no such file.
pub fn read(path: &Path) -> io::Result<Option<(Vec<u8>, Version)>> {
    let mut f = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    Ok(Some((bytes, Version { path: path.to_path_buf(), held: f })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    #[test]
    fn every_write_after_a_read_is_seen() {
        // Back to back, as fast as the machine goes: an mtime or a reused
        // inode number would call some of these unchanged.
        let d = dir();
        let p = d.path().join("s.json");
        for i in 0..500u32 {
            replace(&p, &i.to_le_bytes()).unwrap();
            let (bytes, v) = read(&p).unwrap().expect("file");
            assert_eq!(bytes, i.to_le_bytes());
            assert!(v.is_current(), "round {i}: nothing wrote since the read");
            replace(&p, &(i + 1).to_le_bytes()).unwrap();
            assert!(!v.is_current(), "round {i}: the write after the read is seen");
        }
    }

    #[test]
    fn a_write_between_reading_and_looking_is_seen() {
        // The agent's old way: install (read the state under the lock),
        // then look at the file afterwards to remember which write it had.
        // A CNI ADD that wrote in between was taken for the agent's own
        // write and never read. The version comes with the bytes.
        let d = dir();
        let p = d.path().join("s.json");
        replace(&p, b"installed").unwrap();
        let (bytes, v) = read(&p).unwrap().expect("file");
        replace(&p, b"a container added").unwrap();
        assert_eq!(bytes, b"installed");
        assert!(!v.is_current(), "the ADD between the read and the look is seen");
    }

    #[test]
    fn a_removed_file_is_not_current_and_a_missing_one_reads_as_none() {
        let d = dir();
        let p = d.path().join("s.json");
        assert!(read(&p).unwrap().is_none());
        replace(&p, b"up").unwrap();
        let (_, v) = read(&p).unwrap().expect("file");
        fs::remove_file(&p).unwrap();
        assert!(!v.is_current());
    }
}
