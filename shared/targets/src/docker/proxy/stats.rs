//! What the proxy says of a backend's servers (`show stat <backend> 4 -1`, CSV with a
//! `# ` header): read by column name, never by position (later versions add columns).

/// One server's line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerStat {
    pub name: String,
    /// `UP`, `DOWN`, `MAINT`, `DRAIN`, `UP 1/2`, `no check`...
    pub status: String,
    /// `L7OK`, `L4OK`, `L7STS`..., empty before any check.
    pub check_status: String,
    /// Sessions in flight.
    pub scur: u64,
    /// Requests waiting in its queue.
    pub qcur: u64,
    pub weight: u64,
}

impl ServerStat {
    /// Up, and its last check passed (not just "up until a check says otherwise").
    pub fn checked_up(&self) -> bool {
        self.status.starts_with("UP")
            && matches!(
                self.check_status.trim_start_matches("* "),
                "L7OK" | "L4OK" | "L6OK"
            )
    }
}

/// Parse `show stat` output: one entry per server line.
pub fn parse(csv: &str) -> Vec<ServerStat> {
    let mut lines = csv.lines();
    let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
        return Vec::new();
    };
    let columns: Vec<&str> = header.split(',').collect();
    let at = |name: &str| columns.iter().position(|c| *c == name);
    let (name, status, check, scur, qcur, weight, svname) = (
        at("svname"),
        at("status"),
        at("check_status"),
        at("scur"),
        at("qcur"),
        at("weight"),
        at("svname"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let get = |i: Option<usize>| i.and_then(|i| f.get(i)).copied().unwrap_or("");
            let num = |i| get(i).parse().unwrap_or(0);
            let sv = get(svname);
            (sv != "FRONTEND" && sv != "BACKEND").then(|| ServerStat {
                name: get(name).to_owned(),
                status: get(status).to_owned(),
                check_status: get(check).to_owned(),
                scur: num(scur),
                qcur: num(qcur),
                weight: num(weight),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_read_by_column_name() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,status,weight,check_status\n\
                   be_shop_staging,r0-9001,0,0,2,5,UP,100,L7OK\n\
                   be_shop_staging,r0-9002,0,0,0,0,MAINT,0,\n\
                   be_shop_staging,BACKEND,0,0,2,5,UP,100,\n";
        let s = parse(csv);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].name.as_str(), s[0].scur, s[0].weight),
            ("r0-9001", 2, 100)
        );
        assert!(s[0].checked_up());
        assert!(!s[1].checked_up());
        assert!(parse("not csv").is_empty());
    }
}
