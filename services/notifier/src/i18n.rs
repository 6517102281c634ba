//! The words of a message, in English and Simplified Chinese.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    ZhCn,
}

impl Lang {
    /// `en` or `zh-CN` (validated at config load; anything else reads as English).
    pub fn parse(s: &str) -> Lang {
        if s.eq_ignore_ascii_case("zh-CN") {
            Lang::ZhCn
        } else {
            Lang::En
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }
}

/// A label or phrase used in messages.
#[derive(Clone, Copy, Debug)]
pub enum Word {
    Project,
    Environment,
    Revision,
    Author,
    Commit,
    Image,
    PreviousImage,
    Attempts,
    Run,
    Reason,
    FailedChecks,
    Checks,
    Stages,
    Total,
    Logs,
    Rollback,
    Approve,
    /// The link to the run's page on the dashboard.
    OpenInFerry,
    /// The link when the run waits for approval.
    ApproveInFerry,
    Reject,
    Status,
    By,
    ExpiresAt,
    Comment,
    Hosts,
    Updates,
    More,
    Truncated,
    RunningNow,
    RolledBackFrom,
    Replaced,
    Waiting,
    PassedIn,
    Unchanged,
    NothingDeployed,
    RollingBack,
    ConfigChange,
    Scale,
    Canary,
}

pub fn word(lang: Lang, w: Word) -> &'static str {
    use Word::*;
    match (lang, w) {
        (Lang::En, Project) => "Project",
        (Lang::En, Environment) => "Environment",
        (Lang::En, Revision) => "Revision",
        (Lang::En, Author) => "Author",
        (Lang::En, Commit) => "Commit",
        (Lang::En, Image) => "Image",
        (Lang::En, PreviousImage) => "Previous image",
        (Lang::En, Attempts) => "Attempts",
        (Lang::En, Run) => "Run",
        (Lang::En, Reason) => "Cause",
        (Lang::En, FailedChecks) => "Failed checks",
        (Lang::En, Checks) => "Checks",
        (Lang::En, Stages) => "Stages",
        (Lang::En, Total) => "total",
        (Lang::En, Logs) => "See more",
        (Lang::En, Rollback) => "Roll back",
        (Lang::En, Approve) => "Approve",
        (Lang::En, OpenInFerry) => "Open in Ferry",
        (Lang::En, ApproveInFerry) => "Approve or reject in Ferry",
        (Lang::En, Reject) => "Reject",
        (Lang::En, Status) => "Status",
        (Lang::En, By) => "By",
        (Lang::En, ExpiresAt) => "Expires",
        (Lang::En, Comment) => "Comment",
        (Lang::En, Hosts) => "Hosts",
        (Lang::En, Updates) => "updates (merged to respect the rate limit)",
        (Lang::En, More) => "more",
        (Lang::En, Truncated) => "(cut to fit the message)",
        (Lang::En, RunningNow) => "Running now",
        (Lang::En, ConfigChange) => "Config change",
        (Lang::En, Scale) => "Instances",
        (Lang::En, Canary) => "Canary: share of traffic now",
        (Lang::En, RolledBackFrom) => "Rolled back from",
        (Lang::En, Replaced) => "Replaced",
        (Lang::En, Waiting) => "Waiting to deploy",
        (Lang::En, PassedIn) => "Passed tests in",
        (Lang::En, Unchanged) => "unchanged",
        (Lang::En, NothingDeployed) => "unchanged: nothing was deployed",
        (Lang::En, RollingBack) => "failed its tests, Ferry rolls it back",
        (Lang::ZhCn, Project) => "项目",
        (Lang::ZhCn, Environment) => "环境",
        (Lang::ZhCn, Revision) => "版本",
        (Lang::ZhCn, Author) => "提交人",
        (Lang::ZhCn, Commit) => "提交说明",
        (Lang::ZhCn, Image) => "镜像",
        (Lang::ZhCn, PreviousImage) => "原镜像",
        (Lang::ZhCn, Attempts) => "尝试次数",
        (Lang::ZhCn, Run) => "运行",
        (Lang::ZhCn, Reason) => "原因",
        (Lang::ZhCn, FailedChecks) => "未通过的检查",
        (Lang::ZhCn, Checks) => "检查",
        (Lang::ZhCn, Stages) => "各阶段耗时",
        (Lang::ZhCn, Total) => "总计",
        (Lang::ZhCn, Logs) => "查看详情",
        (Lang::ZhCn, Rollback) => "回滚",
        (Lang::ZhCn, Approve) => "批准",
        (Lang::ZhCn, OpenInFerry) => "在 Ferry 中查看",
        (Lang::ZhCn, ApproveInFerry) => "在 Ferry 中审批",
        (Lang::ZhCn, Reject) => "拒绝",
        (Lang::ZhCn, Status) => "状态",
        (Lang::ZhCn, By) => "操作人",
        (Lang::ZhCn, ExpiresAt) => "截止时间",
        (Lang::ZhCn, Comment) => "备注",
        (Lang::ZhCn, Hosts) => "主机",
        (Lang::ZhCn, Updates) => "条通知（因频率限制合并发送）",
        (Lang::ZhCn, More) => "更多",
        (Lang::ZhCn, Truncated) => "（内容过长已截断）",
        (Lang::ZhCn, RunningNow) => "当前运行",
        (Lang::ZhCn, ConfigChange) => "配置变更",
        (Lang::ZhCn, Scale) => "实例数",
        (Lang::ZhCn, Canary) => "金丝雀当前流量占比",
        (Lang::ZhCn, RolledBackFrom) => "回滚前版本",
        (Lang::ZhCn, Replaced) => "被替换版本",
        (Lang::ZhCn, Waiting) => "待部署镜像",
        (Lang::ZhCn, PassedIn) => "已通过测试的环境",
        (Lang::ZhCn, Unchanged) => "未变",
        (Lang::ZhCn, NothingDeployed) => "未变：没有部署任何版本",
        (Lang::ZhCn, RollingBack) => "测试未通过，Ferry 正在回滚",
    }
}

/// What happened, for a kind; `None` for kinds this notifier does not know yet.
pub fn outcome(lang: Lang, kind: &str) -> Option<&'static str> {
    let (en, zh) = match kind {
        "source.changed" => ("new commit", "新提交"),
        "image.built" => ("image built", "镜像构建完成"),
        "image.pushed" => ("image pushed", "镜像已推送"),
        "image.pulled" => ("image pre-pulled", "镜像已预拉取"),
        "build.failed" => ("build failed", "构建失败"),
        "push.failed" => ("push failed", "推送镜像失败"),
        "pull.failed" => ("pre-pull failed", "预拉取镜像失败"),
        "deploy.requested" => ("deploy requested", "已请求部署"),
        "deploy.started" => ("deploy started", "开始部署"),
        "deploy.started.rollback" => ("rollback started", "开始回滚"),
        "deploy.succeeded" => ("deployed", "部署成功"),
        "deploy.failed" => ("deploy failed", "部署失败"),
        "deploy.superseded" => (
            "not deployed: a newer run is already there",
            "未部署：已有更新的版本",
        ),
        "deploy.rolled_back" => ("rolled back", "已回滚"),
        "test.passed" => ("tests passed", "测试通过"),
        "test.failed" => ("tests failed", "测试未通过"),
        "approval.requested" => ("waiting for approval", "等待审批"),
        "approval.granted" => ("approved", "已批准"),
        "approval.rejected" => ("rejected", "已拒绝"),
        "approval.expired" => ("approval expired", "审批已超时"),
        "notify.failed" => ("a notification could not be sent", "通知发送失败"),
        "scale.succeeded" => ("scaled", "已扩缩容"),
        _ => return None,
    };
    Some(match lang {
        Lang::En => en,
        Lang::ZhCn => zh,
    })
}

/// `rolled back to r14`: a rollback's outcome, naming what runs now.
pub fn rolled_back_to(lang: Lang, revision: &str) -> String {
    match lang {
        Lang::En => format!("rolled back to {revision}"),
        Lang::ZhCn => format!("已回滚到 {revision}"),
    }
}

/// A stage's name in the durations list.
pub fn stage(lang: Lang, stage: &str) -> &'static str {
    match (lang, stage) {
        (Lang::En, "build") => "build",
        (Lang::En, "push") => "push",
        (Lang::En, "pull") => "pre-pull",
        (Lang::En, "deploy") => "deploy",
        (Lang::En, "test") => "test",
        (Lang::ZhCn, "build") => "构建",
        (Lang::ZhCn, "push") => "推送",
        (Lang::ZhCn, "pull") => "预拉取",
        (Lang::ZhCn, "deploy") => "部署",
        (Lang::ZhCn, "test") => "测试",
        _ => "",
    }
}

/// `1.2 s`, `3 min 5 s`, `850 ms`.
pub fn duration(lang: Lang, millis: u64) -> String {
    let (ms, s, min) = match lang {
        Lang::En => ("ms", "s", "min"),
        Lang::ZhCn => ("毫秒", "秒", "分"),
    };
    let sep = if lang == Lang::En { " " } else { "" };
    if millis < 1_000 {
        format!("{millis}{sep}{ms}")
    } else if millis < 60_000 {
        format!("{:.1}{sep}{s}", millis as f64 / 1000.0)
    } else {
        let secs = millis / 1000;
        format!("{}{sep}{min} {}{sep}{s}", secs / 60, secs % 60)
    }
}

/// What a config change's run changed: `by ops: env/production.env, nginx/site.conf`
/// (file names only, never their content; at most `MAX_FILES` of them).
pub fn config_change(lang: Lang, author: Option<&str>, files: &[String]) -> String {
    const MAX_FILES: usize = 8;
    let mut names = files
        .iter()
        .take(MAX_FILES)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if files.len() > MAX_FILES {
        let more = files.len() - MAX_FILES;
        names.push_str(&match lang {
            Lang::En => format!(" and {more} more"),
            Lang::ZhCn => format!(" 等另外 {more} 个文件"),
        });
    }
    match (lang, author, names.is_empty()) {
        (Lang::En, Some(a), false) => format!("by {a}: {names}"),
        (Lang::En, Some(a), true) => format!("by {a}"),
        (Lang::En, None, _) => names,
        (Lang::ZhCn, Some(a), false) => format!("{a} 修改：{names}"),
        (Lang::ZhCn, Some(a), true) => format!("{a} 修改"),
        (Lang::ZhCn, None, _) => names,
    }
}
