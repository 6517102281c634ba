//! The dashboard's words in English and Simplified Chinese, like the notifications.
//! The language is the `ferry_lang` cookie (set by the switch in the header), else the
//! browser's `Accept-Language`.

use axum::http::HeaderMap;

pub const COOKIE: &str = "ferry_lang";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    ZhCn,
}

impl Lang {
    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "zh-cn" | "zh" => Some(Lang::ZhCn),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// The other language, for the switch.
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::ZhCn,
            Lang::ZhCn => Lang::En,
        }
    }

    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(l) = super::cookie(headers, COOKIE).and_then(|c| Lang::parse(&c)) {
            return l;
        }
        let accept = headers
            .get("accept-language")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        // The first language named decides (quality values are rarely out of order).
        match accept.trim_start().get(..2) {
            Some(p) if p.eq_ignore_ascii_case("zh") => Lang::ZhCn,
            _ => Lang::En,
        }
    }

    pub fn t(self, t: T) -> &'static str {
        let (en, zh) = t.words();
        match self {
            Lang::En => en,
            Lang::ZhCn => zh,
        }
    }
}

/// Every phrase the pages show.
#[derive(Clone, Copy, Debug)]
pub enum T {
    Environments,
    Runs,
    SignIn,
    SignOut,
    Token,
    TokenHelp,
    SignedInAs,
    Project,
    Environment,
    Revision,
    Image,
    Hosts,
    Since,
    ShippedBy,
    Nothing,
    PendingApprovals,
    NoPendingApprovals,
    Approve,
    Reject,
    Comment,
    RollBack,
    RollBackHelp,
    Deploy,
    DeployHelp,
    Status,
    Started,
    Duration,
    Author,
    Message,
    Run,
    Filter,
    All,
    Running,
    Waiting,
    Succeeded,
    Failed,
    Search,
    Older,
    Newer,
    Timeline,
    Events,
    Time,
    Kind,
    Detail,
    BuildLog,
    BuildLogKept,
    TestReport,
    Check,
    Result,
    Passed,
    FailedCheck,
    Decisions,
    Live,
    Language,
    NoLedger,
    Delivery,
    DeliveryHelp,
    DeploymentFrequency,
    PerDay,
    LeadTime,
    ChangeFailureRate,
    TimeToRestore,
    Deployments,
    Failures,
    NoDeployments,
    Window,
}

impl T {
    fn words(self) -> (&'static str, &'static str) {
        match self {
            T::Environments => ("Environments", "环境"),
            T::Delivery => ("Delivery", "交付指标"),
            T::DeliveryHelp => (
                "Each project's production (its last environment). Lead time: commit to deployed in production. A change failure: a production deployment that failed its tests there or was rolled back. Time to restore: how long a failed deployment stayed live.",
                "每个项目的生产环境（最后一个环境）。前置时间：从提交到部署到生产。变更失败：在生产中测试失败或被回滚的部署。恢复时间：失败的部署在线多久。",
            ),
            T::DeploymentFrequency => ("Deployment frequency", "部署频率"),
            T::PerDay => ("per day", "次/天"),
            T::LeadTime => ("Lead time for changes (median)", "变更前置时间（中位数）"),
            T::ChangeFailureRate => ("Change failure rate", "变更失败率"),
            T::TimeToRestore => ("Time to restore (median)", "恢复时间（中位数）"),
            T::Deployments => ("Deployments", "部署"),
            T::Failures => ("Failures", "失败"),
            T::NoDeployments => (
                "No production deployment in this window.",
                "此时间段内没有生产部署。",
            ),
            T::Window => ("Last days", "最近天数"),
            T::Runs => ("Runs", "运行记录"),
            T::SignIn => ("Sign in", "登录"),
            T::SignOut => ("Sign out", "退出"),
            T::Token => ("Operator token", "操作员令牌"),
            T::TokenHelp => (
                "The token of your [operators.<name>] entry (what FERRY_TOKEN holds for the ferry CLI).",
                "您在 [operators.<name>] 中的令牌（即 ferry 命令行使用的 FERRY_TOKEN）。",
            ),
            T::SignedInAs => ("Signed in as", "当前操作员"),
            T::Project => ("Project", "项目"),
            T::Environment => ("Environment", "环境"),
            T::Revision => ("Revision", "版本"),
            T::Image => ("Image", "镜像"),
            T::Hosts => ("Hosts", "主机"),
            T::Since => ("Since", "部署时间"),
            T::ShippedBy => ("Shipped by", "发布人"),
            T::Nothing => ("nothing deployed yet", "尚未部署"),
            T::PendingApprovals => ("Waiting for approval", "待审批"),
            T::NoPendingApprovals => ("No run is waiting for approval.", "没有等待审批的运行。"),
            T::Approve => ("Approve", "批准"),
            T::Reject => ("Reject", "拒绝"),
            T::Comment => ("Comment", "备注"),
            T::RollBack => ("Roll back", "回滚"),
            T::RollBackHelp => (
                "Back to the image before the current one, or to a revision",
                "回到当前版本之前的镜像，或指定版本",
            ),
            T::Deploy => ("Deploy", "部署"),
            T::DeployHelp => ("Build and ship a revision", "构建并发布指定版本"),
            T::Status => ("Status", "状态"),
            T::Started => ("Started", "开始时间"),
            T::Duration => ("Duration", "耗时"),
            T::Author => ("Author", "作者"),
            T::Message => ("Message", "提交说明"),
            T::Run => ("Run", "运行"),
            T::Filter => ("Filter", "筛选"),
            T::All => ("all", "全部"),
            T::Running => ("running", "进行中"),
            T::Waiting => ("waiting for approval", "等待审批"),
            T::Succeeded => ("succeeded", "成功"),
            T::Failed => ("failed", "失败"),
            T::Search => ("revision, author or message", "版本、作者或提交说明"),
            T::Older => ("Older", "更早"),
            T::Newer => ("Newer", "更新"),
            T::Timeline => ("Timeline", "时间线"),
            T::Events => ("Events", "事件"),
            T::Time => ("Time", "时间"),
            T::Kind => ("Event", "事件"),
            T::Detail => ("Detail", "详情"),
            T::BuildLog => ("Build log", "构建日志"),
            T::BuildLogKept => (
                "The whole log is kept on the build host at",
                "完整日志保存在构建主机上：",
            ),
            T::TestReport => ("Test report", "测试报告"),
            T::Check => ("Check", "检查项"),
            T::Result => ("Result", "结果"),
            T::Passed => ("passed", "通过"),
            T::FailedCheck => ("failed", "未通过"),
            T::Decisions => ("Approvals and rollbacks", "审批与回滚"),
            T::Live => ("live", "实时"),
            T::Language => ("中文", "English"),
            T::NoLedger => (
                "Build logs and test reports are read from the ledger: set [ledger] url to keep them.",
                "构建日志和测试报告保存在运行账本中：请设置 [ledger] url。",
            ),
        }
    }
}
