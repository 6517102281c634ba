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
    /// Counters since the proxy (re)started: responses by class, and failures the
    /// proxy saw itself.
    pub counters: Counters,
    /// Average time to the response headers over its last requests, in ms.
    pub rtime: u64,
}

/// A server's cumulative counters (they start again from 0 when the proxy restarts).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counters {
    /// Every response (1xx to 5xx and others).
    pub responses: u64,
    pub hrsp_5xx: u64,
    /// Responses cut or broken (`eresp`).
    pub eresp: u64,
    /// Connections to it that failed (`econ`).
    pub econ: u64,
    /// Requests retried away from it (`wretr`): a failure the client did not see.
    pub wretr: u64,
}

impl Counters {
    /// What happened between `before` and `self`; none when a counter went down (the
    /// proxy restarted in between, so there is no baseline).
    pub fn since(&self, before: &Counters) -> Option<Counters> {
        Some(Counters {
            responses: self.responses.checked_sub(before.responses)?,
            hrsp_5xx: self.hrsp_5xx.checked_sub(before.hrsp_5xx)?,
            eresp: self.eresp.checked_sub(before.eresp)?,
            econ: self.econ.checked_sub(before.econ)?,
            wretr: self.wretr.checked_sub(before.wretr)?,
        })
    }

    pub fn add(&mut self, o: &Counters) {
        self.responses += o.responses;
        self.hrsp_5xx += o.hrsp_5xx;
        self.eresp += o.eresp;
        self.econ += o.econ;
        self.wretr += o.wretr;
    }

    /// Everything that failed on the server.
    pub fn failures(&self) -> u64 {
        self.hrsp_5xx + self.eresp + self.econ + self.wretr
    }
}

impl ServerStat {
    /// Whether it gets new requests now: up, ready and with a weight.
    pub fn taking(&self) -> bool {
        self.status.starts_with("UP") && self.weight > 0
    }

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
    let classes = [
        "hrsp_1xx",
        "hrsp_2xx",
        "hrsp_3xx",
        "hrsp_4xx",
        "hrsp_5xx",
        "hrsp_other",
    ]
    .map(&at);
    let (h5, eresp, econ, wretr, rtime) = (
        at("hrsp_5xx"),
        at("eresp"),
        at("econ"),
        at("wretr"),
        at("rtime"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let get = |i: Option<usize>| i.and_then(|i| f.get(i)).copied().unwrap_or("");
            let num = |i| get(i).parse::<u64>().unwrap_or(0);
            let sv = get(svname);
            (sv != "FRONTEND" && sv != "BACKEND").then(|| ServerStat {
                name: get(name).to_owned(),
                status: get(status).to_owned(),
                check_status: get(check).to_owned(),
                scur: num(scur),
                qcur: num(qcur),
                weight: num(weight),
                counters: Counters {
                    responses: classes.iter().map(|c| num(*c)).sum(),
                    hrsp_5xx: num(h5),
                    eresp: num(eresp),
                    econ: num(econ),
                    wretr: num(wretr),
                },
                rtime: num(rtime),
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

        let csv = "# pxname,svname,econ,eresp,wretr,hrsp_2xx,hrsp_5xx,rtime\n\
                   be_a_b,r0-1,1,2,3,90,10,12\n";
        let c = parse(csv)[0].counters;
        assert_eq!((c.responses, c.failures()), (100, 16));
        assert_eq!(parse(csv)[0].rtime, 12);
        let earlier = Counters {
            responses: 200,
            ..c
        };
        assert_eq!(c.since(&earlier), None, "a restart in between");
    }
}
