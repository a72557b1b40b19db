//! Revisit's rules (回访规则), without I/O: what a recorded answer must contain, which answers
//! reopen the case, and how the answer reads in Chinese.

use jiesu_kit::text::has_control;
use jiesu_proto::v1::Satisfaction;

/// Longest comment (回访意见) a revisit may record, in characters.
pub const MAX_COMMENT_CHARS: usize = 1_000;
/// Longest name of the person recording the revisit, in characters.
pub const MAX_PERSON_CHARS: usize = 50;

/// Where a revisit task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevisitStatus {
    /// 待回访: the case was resolved; the citizen has not been called back yet.
    Pending,
    /// 已回访
    Recorded,
}

impl RevisitStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RevisitStatus::Pending => "pending",
            RevisitStatus::Recorded => "recorded",
        }
    }
}

/// The citizen's answer, checked and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub satisfaction: Satisfaction,
    pub solved: bool,
    pub comment: String,
    pub recorded_by: String,
}

impl Verdict {
    /// Whether this answer reopens the case.
    pub fn reopens(&self) -> bool {
        needs_reopen(self.satisfaction, self.solved)
    }
}

/// A dissatisfied citizen, or a problem not solved, reopens the case (重新交办); (basically)
/// satisfied with the problem solved closes it.
pub fn needs_reopen(satisfaction: Satisfaction, solved: bool) -> bool {
    !solved || !matches!(satisfaction, Satisfaction::Satisfied | Satisfaction::BasicallySatisfied)
}

/// Checks an answer as the request carries it (`satisfaction` is the raw enum number) and
/// returns every problem, each naming its field.
pub fn validate(satisfaction: i32, solved: bool, comment: &str, recorded_by: &str) -> Result<Verdict, Vec<String>> {
    let mut problems = Vec::new();
    let satisfaction = match Satisfaction::try_from(satisfaction) {
        Ok(Satisfaction::Unspecified) => {
            problems.push("satisfaction is required: SATISFIED, BASICALLY_SATISFIED or DISSATISFIED (满意/基本满意/不满意)".to_string());
            Satisfaction::Unspecified
        }
        Ok(s) => s,
        Err(_) => {
            problems.push(format!("satisfaction {satisfaction} is not a jiesu.v1.Satisfaction"));
            Satisfaction::Unspecified
        }
    };
    let comment = comment.trim();
    let comment_chars = comment.chars().count();
    if comment_chars > MAX_COMMENT_CHARS {
        problems.push(format!("comment is {comment_chars} characters long; at most {MAX_COMMENT_CHARS} are allowed"));
    } else if has_control(comment, true) {
        problems.push("comment contains control characters (line breaks and tabs are fine)".to_string());
    }
    let recorded_by = recorded_by.trim();
    let person_chars = recorded_by.chars().count();
    if person_chars == 0 {
        problems.push("recorded_by is required: who called the citizen back (回访人)".to_string());
    } else if person_chars > MAX_PERSON_CHARS {
        problems.push(format!("recorded_by is {person_chars} characters long; at most {MAX_PERSON_CHARS} are allowed"));
    } else if has_control(recorded_by, false) {
        problems.push("recorded_by contains control characters".to_string());
    }
    if problems.is_empty() {
        Ok(Verdict { satisfaction, solved, comment: comment.to_string(), recorded_by: recorded_by.to_string() })
    } else {
        Err(problems)
    }
}

/// The stored form of a satisfaction ("" before the revisit is recorded).
pub fn satisfaction_str(s: Satisfaction) -> &'static str {
    match s {
        Satisfaction::Unspecified => "",
        Satisfaction::Satisfied => "satisfied",
        Satisfaction::BasicallySatisfied => "basically_satisfied",
        Satisfaction::Dissatisfied => "dissatisfied",
    }
}

pub fn parse_satisfaction(s: &str) -> Satisfaction {
    match s {
        "satisfied" => Satisfaction::Satisfied,
        "basically_satisfied" => Satisfaction::BasicallySatisfied,
        "dissatisfied" => Satisfaction::Dissatisfied,
        _ => Satisfaction::Unspecified,
    }
}

/// 满意 / 基本满意 / 不满意
pub fn satisfaction_zh(s: Satisfaction) -> &'static str {
    match s {
        Satisfaction::Satisfied => "满意",
        Satisfaction::BasicallySatisfied => "基本满意",
        Satisfaction::Dissatisfied => "不满意",
        Satisfaction::Unspecified => "未评价",
    }
}

/// Why the case is reopened, in the words the handling unit reads ("回访不满意，问题未解决").
pub fn reopen_reason(satisfaction: Satisfaction, solved: bool) -> String {
    match (satisfaction, solved) {
        (Satisfaction::Dissatisfied, true) => "回访不满意".to_string(),
        (Satisfaction::Dissatisfied, false) => "回访不满意，问题未解决".to_string(),
        (s, _) => format!("回访{}但问题未解决", satisfaction_zh(s)),
    }
}

/// "已办结，待回访"; later rounds say which.
pub fn pending_detail(round: u32) -> String {
    if round <= 1 { "已办结，待回访".to_string() } else { format!("已办结，待回访（第{round}轮）") }
}

/// "回访：满意，问题已解决" / "回访：不满意，问题未解决，已重新交办"
pub fn recorded_detail(satisfaction: Satisfaction, solved: bool, reopened: bool) -> String {
    let solved = if solved { "问题已解决" } else { "问题未解决" };
    let tail = if reopened { "，已重新交办" } else { "" };
    format!("回访：{}，{solved}{tail}", satisfaction_zh(satisfaction))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Satisfaction::*;

    const ANSWERS: [Satisfaction; 3] = [Satisfied, BasicallySatisfied, Dissatisfied];

    #[test]
    fn only_satisfied_and_solved_closes() {
        let expected = [
            (Satisfied, true, false),
            (Satisfied, false, true),
            (BasicallySatisfied, true, false),
            (BasicallySatisfied, false, true),
            (Dissatisfied, true, true),
            (Dissatisfied, false, true),
        ];
        for (s, solved, reopens) in expected {
            assert_eq!(needs_reopen(s, solved), reopens, "{s:?} solved={solved}");
        }
    }

    #[test]
    fn every_valid_answer_is_accepted_and_trimmed() {
        for s in ANSWERS {
            for solved in [true, false] {
                let v = validate(s as i32, solved, "  路口已经干净了 ", " 回访员小陈 ").unwrap();
                assert_eq!(v, Verdict { satisfaction: s, solved, comment: "路口已经干净了".into(), recorded_by: "回访员小陈".into() });
                assert_eq!(v.reopens(), needs_reopen(s, solved));
            }
        }
        assert_eq!(validate(Satisfied as i32, true, "", "小陈").unwrap().comment, "", "a comment is optional");
    }

    #[test]
    fn every_problem_is_reported() {
        let problems = validate(Unspecified as i32, true, &"很".repeat(MAX_COMMENT_CHARS + 1), "  ").unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("satisfaction is required"));
        assert_eq!(problems[1], "comment is 1001 characters long; at most 1000 are allowed");
        assert!(problems[2].starts_with("recorded_by is required"));
        assert_eq!(validate(9, true, "", "小陈").unwrap_err(), vec!["satisfaction 9 is not a jiesu.v1.Satisfaction".to_string()]);
        assert!(validate(Satisfied as i32, true, "", &"陈".repeat(51)).unwrap_err()[0].contains("at most 50"));
        assert!(validate(Satisfied as i32, true, "", "小\u{0}陈").unwrap_err()[0].contains("control"));
        assert!(validate(Satisfied as i32, true, "摊点\u{1b}[2J还在", "小陈").unwrap_err()[0].starts_with("comment contains control"));
        assert!(validate(Satisfied as i32, true, "摊点还在\n明天再看", "小陈").is_ok(), "a comment may break lines");
        assert!(validate(Satisfied as i32, true, &"很".repeat(MAX_COMMENT_CHARS), "小陈").is_ok());
    }

    #[test]
    fn reasons_say_what_the_citizen_answered() {
        let expected = [
            (Satisfied, false, "回访满意但问题未解决"),
            (BasicallySatisfied, false, "回访基本满意但问题未解决"),
            (Dissatisfied, true, "回访不满意"),
            (Dissatisfied, false, "回访不满意，问题未解决"),
        ];
        for (s, solved, reason) in expected {
            assert_eq!(reopen_reason(s, solved), reason);
        }
    }

    #[test]
    fn timeline_details() {
        assert_eq!(pending_detail(1), "已办结，待回访");
        assert_eq!(pending_detail(2), "已办结，待回访（第2轮）");
        assert_eq!(recorded_detail(Satisfied, true, false), "回访：满意，问题已解决");
        assert_eq!(recorded_detail(BasicallySatisfied, true, false), "回访：基本满意，问题已解决");
        assert_eq!(recorded_detail(Dissatisfied, false, true), "回访：不满意，问题未解决，已重新交办");
        assert_eq!(recorded_detail(Satisfied, false, true), "回访：满意，问题未解决，已重新交办");
    }

    #[test]
    fn satisfaction_round_trips() {
        for s in [Unspecified, Satisfied, BasicallySatisfied, Dissatisfied] {
            assert_eq!(parse_satisfaction(satisfaction_str(s)), s);
        }
    }
}
