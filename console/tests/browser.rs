//! One case walked through the desk in a real headless Chromium (Debian's, installed by
//! `scripts/test.sh`), by the people who do the work, each in their own browser: the centre
//! dispatches it by hand, the unit returns it and the centre sends it back, the unit signs,
//! contacts, calls in an assisting unit and asks for more time, the assisting unit answers, the
//! centre approves the extension and escalates, the leader supervises, the unit replies and
//! resolves, the revisit agent records the citizen's verdict — and each sees what is theirs and
//! is refused the rest. Queues refresh by themselves when events arrive. Screenshots land in
//! `target/screenshots/` (the README's come from there).

mod support;

use std::{path::PathBuf, time::Duration};

use jiesu_kit::auth::Role;
use jiesu_proto::v1::CaseStatus;
use jiesu_testkit::browser::Browser;
use support::{Desk, PASSWORD};

const WAIT: Duration = Duration::from_secs(30);

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    dir
}

/// A person's own browser, signed in.
async fn signed_in(desk: &Desk, username: &str, phone: bool) -> Browser {
    let b = if phone { Browser::phone().await } else { Browser::start().await }.expect("Chromium (scripts/test.sh installs it)");
    b.goto(&desk.url("/signin")).await.unwrap();
    b.find("#username").await.unwrap().send_keys(username).await.unwrap();
    b.find("#password").await.unwrap().send_keys(PASSWORD).await.unwrap();
    b.find("form[action='/signin'] button[type=submit]").await.unwrap().click().await.unwrap();
    b.wait_for_text("h1", "我的工作台", WAIT).await.unwrap();
    b
}

/// What to put in one field of an action's form.
enum Input<'a> {
    Text(&'a str, &'a str),
    Select(&'a str, &'a str),
    Radio(&'a str, &'a str),
    /// A `datetime-local` field, set as a date picker would.
    When(&'a str, &'a str),
}

/// Opens the case page, fills the action's form as a person would, sends it, and waits for the
/// page to say it was done.
async fn act(b: &Browser, desk: &Desk, no: &str, action: &str, inputs: &[Input<'_>]) {
    b.goto(&desk.url(&format!("/case/{no}"))).await.unwrap();
    let form = format!("#act-{action}");
    b.wait_for(&format!("{form} summary"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("no action {action} on {no}: {e:?}"))
        .click()
        .await
        .unwrap();
    for input in inputs {
        match input {
            Input::Text(name, value) => b.find(&format!("#{action}-{name}")).await.unwrap().send_keys(value).await.unwrap(),
            Input::Select(name, value) => b.find(&format!("#{action}-{name}")).await.unwrap().select_by_value(value).await.unwrap(),
            Input::Radio(name, value) => {
                b.find(&format!("{form} input[name={name}][value='{value}']")).await.unwrap().click().await.unwrap()
            }
            Input::When(name, value) => {
                b.execute(
                    "document.getElementById(arguments[0]).value = arguments[1];",
                    vec![format!("{action}-{name}").into(), (*value).into()],
                )
                .await
                .unwrap();
            }
        }
    }
    b.find(&format!("{form} button[type=submit]")).await.unwrap().click().await.unwrap();
    if let Err(e) = b.wait_for("#done", WAIT).await {
        let page = b.page_source().await.unwrap_or_default();
        let problem = page.split("role=\"alert\">").nth(1).and_then(|t| t.split('<').next()).unwrap_or("(none)");
        panic!("{action} on {no} was not done ({e:?}); the page says: {problem}");
    }
}

fn in_days(days: i64) -> String {
    let t = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai) + chrono::Duration::days(days);
    t.format("%Y-%m-%dT%H:%M").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_case_through_the_desk_by_everyone_who_works_it() {
    let desk = Desk::start().await;
    desk.account("agent", "受理员小李", &[Role::CentreAgent], None, None).await;
    desk.account("dongmen", "王五", &[Role::UnitHandler], Some("st-dongmen"), None).await;
    desk.account("xinan", "赵六", &[Role::UnitHandler], Some("st-xinan"), None).await;
    desk.account("li", "李副区长", &[Role::Leader], None, Some("leader-li")).await;
    desk.account("chen", "回访员小陈", &[Role::RevisitAgent], None, None).await;
    let shots = screenshots();

    // Education (07.01) has no rule in the demo's responsibility list: the centre's manual queue.
    let no = desk
        .submit(
            "call-school",
            "孩子入学学位问题",
            "孩子今年上一年级，划片学校说学位已满不给办理入学，希望教育部门给个说法。",
            "st-dongmen",
            "cm-lizhi",
        )
        .await;
    desk.wait_case(&no, "the case in the manual queue", |c| c.manual_queue).await;

    // The centre: the queue counts it; the queue refreshes by itself when another arrives.
    let agent = signed_in(&desk, "agent", false).await;
    agent.wait_for_text("#queue-manual", &no, WAIT).await.unwrap();
    agent.wait_for_text("#live", "实时更新", WAIT).await.expect("the page listens to the events");
    let second = desk.submit("call-school-2", "学校乱收费", "学校开学要求每个学生交五百元资料费，没有收据。", "st-xinan", "").await;
    agent.wait_for_text("#queue-manual", &second, WAIT).await.expect("the queue refreshed by itself, no reload");
    agent.screenshot(shots.join("console-queue.png")).await.unwrap();
    act(&agent, &desk, &no, "dispatch", &[Input::Select("unit", "st-dongmen"), Input::Text("reason", "属地街道先行协调")]).await;

    // The unit: signs for nothing yet — it returns it, within the window, with its reason.
    let dongmen = signed_in(&desk, "dongmen", true).await;
    dongmen.wait_for_text("#queue-to-sign", &no, WAIT).await.unwrap();
    let width: i64 = dongmen.execute("return document.documentElement.scrollWidth", vec![]).await.unwrap().as_i64().unwrap();
    assert!(width <= 390, "the unit's desk fits a phone ({width}px)");
    act(&dongmen, &desk, &no, "return", &[Input::Radio("reason", "not_our_remit"), Input::Text("text", "学位分配属区教育局职责")]).await;
    // Waiting for the centre's ruling, the unit has nothing to do on it.
    dongmen.goto(&desk.url(&format!("/case/{no}"))).await.unwrap();
    dongmen.wait_for("#no-actions", WAIT).await.unwrap();

    // The centre rules: not upheld, back to the unit with its reasons.
    agent.goto(&desk.url("/")).await.unwrap();
    agent.wait_for_text("#queue-returns", &no, WAIT).await.unwrap();
    act(&agent, &desk, &no, "review-return", &[Input::Radio("uphold", "no"), Input::Text("ruling", "先由街道协调学校，教育局协办")]).await;

    // A form sent incomplete comes back with the reason next to the field, nothing done.
    dongmen.goto(&desk.url(&format!("/case/{no}"))).await.unwrap();
    dongmen.wait_for("#act-accept summary", WAIT).await.unwrap();
    act(&dongmen, &desk, &no, "accept", &[]).await;
    dongmen.find("#act-contact summary").await.unwrap().click().await.unwrap();
    act(&dongmen, &desk, &no, "contact", &[Input::Text("note", "已电话联系家长，约定到校了解")]).await;
    dongmen.find("#act-verify summary").await.unwrap().click().await.unwrap();
    dongmen.find("#act-verify button[type=submit]").await.unwrap().click().await.unwrap();
    dongmen.wait_for_text("#act-verify .err", "请填写", WAIT).await.expect("the empty field is pointed at");
    let invalid = dongmen.find("#verify-note").await.unwrap().attribute("aria-invalid").await.unwrap();
    assert_eq!(invalid.as_deref(), Some("true"));

    // Joint handling (吹哨) and more time.
    act(&dongmen, &desk, &no, "assist", &[Input::Select("unit", "st-xinan"), Input::Text("note", "请协助核实学位情况")]).await;
    act(&dongmen, &desk, &no, "extension", &[Input::When("until", &in_days(20)), Input::Text("reason", "需协调教育局调配学位")]).await;

    // The assisting unit sees the case, signs for its part and answers it.
    let xinan = signed_in(&desk, "xinan", false).await;
    xinan.wait_for_text("#queue-assisting", &no, WAIT).await.unwrap();
    act(&xinan, &desk, &no, "assist-accept", &[]).await;
    act(&xinan, &desk, &no, "assist-answer", &[Input::Text("answer", "已与学校核实，尚有插班学位")]).await;
    xinan.goto(&desk.url(&format!("/case/{no}"))).await.unwrap();
    assert!(xinan.find_all("#act-accept").await.unwrap().is_empty(), "only the owner signs for the case");

    // The centre approves the extension and hands the case to a leader.
    agent.goto(&desk.url("/")).await.unwrap();
    agent.wait_for_text("#queue-extensions", &no, WAIT).await.unwrap();
    act(&agent, &desk, &no, "decide-extension", &[Input::Radio("approve", "yes"), Input::Text("reason", "同意")]).await;
    act(&agent, &desk, &no, "escalate", &[Input::Select("leader", "leader-li"), Input::Text("reason", "涉及学位调配，需领导协调")]).await;

    // The leader finds it among the cases escalated to them and supervises it.
    let leader = signed_in(&desk, "li", false).await;
    leader.wait_for_text("#queue-escalated", &no, WAIT).await.unwrap();
    act(&leader, &desk, &no, "supervise", &[Input::Text("note", "请本周内落实学位")]).await;
    leader.goto(&desk.url("/dashboard")).await.unwrap();
    leader.wait_for_text("nav[aria-label=分管单位]", "东门街道", WAIT).await.expect("a leader's dashboard leads to the units they oversee");
    leader.find("nav[aria-label=分管单位] a[href*=st-dongmen]").await.unwrap().click().await.unwrap();
    leader.wait_for_text("h1", "东门街道", WAIT).await.unwrap();
    assert!(leader.find_all("[role=alert]").await.unwrap().is_empty(), "the figures of an overseen unit are the leader's to see");
    leader.goto(&desk.url("/admin/accounts")).await.unwrap();
    leader.wait_for_text("#message", "仅限系统管理员", WAIT).await.expect("administration is refused, and says why");

    // The unit answers in writing and resolves.
    act(
        &dongmen,
        &desk,
        &no,
        "reply",
        &[Input::Text("verification", "经核实，划片学校一年级尚有插班学位"), Input::Text("handling", "已协调学校为孩子办理入学手续")],
    )
    .await;
    dongmen.goto(&desk.url(&format!("/case/{no}"))).await.unwrap();
    dongmen.screenshot(shots.join("console-case-phone.png")).await.unwrap();
    act(&dongmen, &desk, &no, "resolve", &[]).await;
    agent.goto(&desk.url(&format!("/case/{no}"))).await.unwrap();
    agent.wait_for_text("#timeline", "办结", WAIT).await.unwrap();
    agent.screenshot(shots.join("console-case.png")).await.unwrap();

    // The revisit agent calls back: satisfied, solved — closed.
    let chen = signed_in(&desk, "chen", false).await;
    chen.wait_for_text("#queue-revisits", &no, WAIT).await.unwrap();
    act(
        &chen,
        &desk,
        &no,
        "revisit",
        &[Input::Radio("satisfaction", "satisfied"), Input::Radio("solved", "yes"), Input::Text("comment", "满意")],
    )
    .await;
    let closed = desk.wait_case(&no, "the case to be closed", |c| c.status == CaseStatus::Closed as i32).await;
    assert!(closed.supervised && closed.leader_id == "leader-li");

    // The timeline tells the whole story, across the services.
    agent.goto(&desk.url(&format!("/case/{no}"))).await.unwrap();
    let timeline = agent.find("#timeline").await.unwrap().text().await.unwrap();
    for step in ["受理", "派单", "时限", "回访"] {
        assert!(timeline.contains(step), "the timeline has {step}: {timeline}");
    }

    // What a citizen typed is shown as text, in the queue and on the case page: no element is made of it.
    let third = desk
        .submit(
            "call-school-3",
            "学校乱收费<img src=x onerror=alert(1)>",
            "学校开学要求每个学生交五百元资料费，没有收据。<script>alert(2)</script>",
            "st-xinan",
            "",
        )
        .await;
    let seen = desk.wait_case(&third, "the third case in dispatch", |_| true).await;
    assert!(seen.manual_queue, "{seen:?}");
    agent.goto(&desk.url("/")).await.unwrap();
    agent.wait_for_text("#queue-manual", &third, WAIT).await.unwrap();
    let queue = agent.find("#queue-manual").await.unwrap().text().await.unwrap();
    assert!(queue.contains("学校乱收费<img src=x onerror=alert(1)>"), "shown as typed: {queue}");
    assert!(agent.find_all("#queue-manual img").await.unwrap().is_empty());
    agent.goto(&desk.url(&format!("/case/{third}"))).await.unwrap();
    let text = agent.wait_for("#citizen-text", WAIT).await.unwrap().text().await.unwrap();
    assert!(text.ends_with("<script>alert(2)</script>"), "{text}");
    assert!(agent.find_all("#citizen-text script, main h1 img").await.unwrap().is_empty(), "no markup from the citizen");

    // Too vague to place: it waits for the centre's review, which gives it its sub-item.
    let vague = desk.submit("call-vague", "反映情况", "你好，我想反映个情况，这事拖了挺久了，一直没人管", "st-dongmen", "cm-lizhi").await;
    agent.goto(&desk.url("/")).await.unwrap();
    agent.wait_for_text("#queue-review", &vague, WAIT).await.expect("the review queue lists it");
    act(&agent, &desk, &vague, "reclassify", &[Input::Select("sub_item", "01.03"), Input::Text("note", "市民补充：小区门口长期占道摆摊")])
        .await;
    let placed = desk.wait_case(&vague, "the reviewed case to be dispatched", |c| !c.unit_id.is_empty()).await;
    assert_eq!(placed.sub_item, "01.03");

    // The dashboard: figures and charts drawn on the server.
    agent.goto(&desk.url("/dashboard")).await.unwrap();
    agent.wait_for_text("#figures", "办结按时率", WAIT).await.unwrap();
    let charts = agent.find_all("svg.chart").await.unwrap();
    assert!(charts.len() >= 2, "charts are SVG in the page");
    agent.screenshot(shots.join("console-dashboard.png")).await.unwrap();
}
