//! `.dockerignore`, as Docker reads it: one pattern a line, `#` comments, `!` for
//! exceptions (the last matching line wins), `*` and `?` within a path segment, `**`
//! across segments, and a pattern that matches a folder excludes what is inside it.

pub struct DockerIgnore {
    rules: Vec<(bool, Vec<String>)>,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> Self {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (exception, pattern) = match l.strip_prefix('!') {
                    Some(p) => (true, p.trim()),
                    None => (false, l),
                };
                let segments = pattern
                    .trim_start_matches("./")
                    .trim_matches('/')
                    .split('/')
                    .filter(|s| !s.is_empty() && *s != ".")
                    .map(str::to_owned)
                    .collect();
                (exception, segments)
            })
            .collect();
        Self { rules }
    }

    /// Whether the path (relative, `/`-separated) is left out of the build context.
    pub fn excludes(&self, path: &str) -> bool {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut excluded = false;
        for (exception, pattern) in &self.rules {
            // A pattern excludes a path it matches, or any parent of it.
            let hit = (1..=segs.len()).any(|n| matches(pattern, &segs[..n]));
            if hit {
                excluded = !exception;
            }
        }
        excluded
    }
}

fn matches(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| matches(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((seg, path_rest)) => {
                segment(first.as_bytes(), seg.as_bytes()) && matches(rest, path_rest)
            }
            None => false,
        },
    }
}

/// `*` and `?` within one segment.
fn segment(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => segment(&p[1..], s) || (!s.is_empty() && segment(p, &s[1..])),
        (Some(b'?'), Some(_)) => segment(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => segment(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_semantics() {
        let d =
            DockerIgnore::parse("# comment\nnode_modules\n*.log\n!keep.log\ndocs/**/*.md\n/tmp\n");
        assert!(d.excludes("node_modules"));
        assert!(d.excludes("node_modules/a/b.js"));
        assert!(d.excludes("debug.log"));
        assert!(!d.excludes("keep.log"));
        assert!(
            !d.excludes("sub/debug.log"),
            "*.log only matches at the top, as in Docker"
        );
        assert!(d.excludes("docs/a/b/c.md"));
        assert!(d.excludes("docs/c.md"));
        assert!(d.excludes("tmp/x"));
        assert!(!d.excludes("src/main.php"));
    }
}
