//! Classification (分类): scoring a request against the taxonomy and assessing its urgency.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::keywords::{SEPARATOR, count_hits, normalize};
use super::{Taxonomy, Urgency};

// ---------------------------------------------------------------------------------------------
// Classification (分类)
// ---------------------------------------------------------------------------------------------

/// Result of classifying one request; a clerk reviews it before or after dispatch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// Sub-item code (小项), e.g. "01.03".
    pub sub_item: String,
    /// Category code (大类), e.g. "01".
    pub category: String,
    /// Urgency (紧急 / 一般 / 复杂).
    pub urgency: Urgency,
    /// 0 when the choice is a guess (no match, or a tie); towards 1 with strong, unambiguous
    /// evidence.
    pub confidence: f32,
    /// Keywords that decided the result, as written in the taxonomy: first those supporting
    /// the sub-item (strongest first), then those that set the urgency.
    pub matched: Vec<String>,
    /// True when nothing matched and the fallback sub-item (兜底小项) was used.
    pub fallback: bool,
}

/// Title hits count double: the title is the clerk's or citizen's own summary of the problem,
/// while descriptions wander (where it happened, who was called before…).
const TITLE_FACTOR: u32 = 2;
const DESCRIPTION_FACTOR: u32 = 1;
/// Repeating a word is some evidence, but a rant naming 噪音 ten times is not ten complaints.
const MAX_COUNTED_OCCURRENCES: u32 = 5;
/// Score (in keyword-weight units, see [`keyword_weight`]) at which evidence is "fairly
/// strong": one 2-character title word or one 4-character description phrase.
const CONFIDENCE_SCALE: f32 = 2000.0;

/// Weight of a keyword, in thousandths, growing with its length: a 4-character phrase
/// (拖欠工资) is far less likely to appear by accident than a 2-character word (工资).
/// Integer so that equal evidence gives exactly equal scores and ties break by code alone.
pub(super) fn keyword_weight(normalized: &str) -> u32 {
    let chars = normalized.chars().filter(|&c| c != SEPARATOR).count() as u32;
    (chars * 500).clamp(500, 3000)
}

/// Classifies a request by its title and description (标题 / 诉求内容).
///
/// Each sub-item scores the weight of every keyword found, doubled in the title, with
/// diminishing credit for repeats; a keyword found only inside a longer found keyword is
/// not counted (拖欠工资 does not also count 工资). The highest score wins, ties going to the
/// lower code. Confidence grows with the winning score and with its margin over the
/// runner-up, and is 0 on a tie. With no match the fallback sub-item is returned with
/// confidence 0 and `fallback = true`. Urgency is emergency if any emergency keyword occurs,
/// else complex if any complex keyword occurs, else normal.
pub fn classify(taxonomy: &Taxonomy, title: &str, description: &str) -> Classification {
    let title = normalize(title);
    let description = normalize(description);

    // score per position in `taxonomy.flat`; per sub-item, credit per keyword as written.
    let mut scores = vec![0u32; taxonomy.flat.len()];
    let mut credit: BTreeMap<usize, BTreeMap<String, u32>> = BTreeMap::new();
    for (text, factor) in [(&title, TITLE_FACTOR), (&description, DESCRIPTION_FACTOR)] {
        for (kw, count) in count_hits(&taxonomy.keywords, text) {
            let keyword = &taxonomy.keywords[kw];
            let counted = count.min(MAX_COUNTED_OCCURRENCES);
            // first occurrence full weight, each further one half
            let points = keyword.weight * factor * (counted + 1) / 2;
            for (pos, written) in &keyword.owners {
                scores[*pos] += points;
                *credit.entry(*pos).or_default().entry(written.clone()).or_default() += points;
            }
        }
    }

    // Highest score, then lowest code: the order of the file must not decide a tie.
    let code_at = |pos: usize| {
        let (c, s) = taxonomy.flat[pos];
        taxonomy.file.categories[c].sub_items[s].code.as_str()
    };
    let mut ranked: Vec<usize> = (0..scores.len()).filter(|&p| scores[p] > 0).collect();
    ranked.sort_by(|&a, &b| scores[b].cmp(&scores[a]).then_with(|| code_at(a).cmp(code_at(b))));

    let (urgency, urgency_words) = assess_urgency(taxonomy, &title, &description);

    let (winner, confidence, mut matched, fallback) = match ranked.first() {
        None => (taxonomy.fallback, 0.0, Vec::new(), true),
        Some(&best) => {
            let best_score = scores[best] as f32;
            let runner_up = ranked.get(1).map_or(0.0, |&p| scores[p] as f32);
            let margin = (best_score - runner_up) / best_score;
            let strength = 1.0 - (-best_score / CONFIDENCE_SCALE).exp();
            let confidence = ((margin * strength).clamp(0.0, 1.0) * 1000.0).round() / 1000.0;
            let mut words: Vec<(String, u32)> = credit.remove(&best).unwrap_or_default().into_iter().collect();
            words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            (best, confidence, words.into_iter().map(|(w, _)| w).collect(), false)
        }
    };
    for word in urgency_words {
        if !matched.contains(&word) {
            matched.push(word);
        }
    }

    let (c, s) = taxonomy.flat[winner];
    let category = &taxonomy.file.categories[c];
    Classification { sub_item: category.sub_items[s].code.clone(), category: category.code.clone(), urgency, confidence, matched, fallback }
}

/// Urgency and the keywords that set it. No negation handling on purpose: "是不是燃气泄漏"
/// must still raise an emergency, and a clerk can downgrade a false alarm in seconds.
fn assess_urgency(taxonomy: &Taxonomy, title: &str, description: &str) -> (Urgency, Vec<String>) {
    let found = |list: &[(String, String)]| -> Vec<String> {
        list.iter()
            .filter(|(n, _)| title.contains(n.as_str()) || description.contains(n.as_str()))
            .map(|(_, written)| written.clone())
            .collect()
    };
    let emergency = found(&taxonomy.emergency);
    if !emergency.is_empty() {
        return (Urgency::Emergency, emergency);
    }
    let complex = found(&taxonomy.complex);
    if !complex.is_empty() {
        return (Urgency::Complex, complex);
    }
    (Urgency::Normal, Vec::new())
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn default() -> Taxonomy {
        Taxonomy::default_taxonomy()
    }

    /// Realistic complaints, as a 12345 clerk would type them, with the expected sub-item.
    #[rustfmt::skip]
    const COMPLAINTS: &[(&str, &str, &str)] = &[
        ("", "小区门口有人私装地锁，占用公共车位", "01.03"),
        ("地铁口电动车乱停乱放", "灵芝地铁站A出口电动车乱停乱放，无人管理，行人无法通行", "01.03"),
        ("共享单车堵路", "楼下共享单车乱停，把消防通道都堵上了", "01.03"),
        ("占道经营", "菜市场外面每天晚上都有人摆摊卖水果，占道经营", "01.03"),
        ("", "小区垃圾桶满了好几天没人清，臭气熏天，到处都是小广告", "01.01"),
        ("路边垃圾堆", "路边有一大堆建筑垃圾，乱倒垃圾没人管", "01.01"),
        ("楼顶违建", "顶楼住户在楼顶加盖了一间彩钢房，属于违章建筑", "01.02"),
        ("", "邻居在院子里私搭乱建，还扩建了两间房", "01.02"),
        ("物业不作为", "物业费年年交，电梯坏了一个月都没人修", "02.01"),
        ("", "小区保洁不到位，垃圾清运不及时，物业公司也不管", "02.01"),
        ("群租", "对门房子被二房东打了隔断，住了十几个人，进出人员混杂", "02.02"),
        ("房产证办不下来", "买房已经五年了，开发商一直不给办房产证", "02.03"),
        ("", "回迁房交房三年了还办不了证，不动产登记一直卡着", "02.03"),
        ("停水", "小区从昨天起停水，也没有通知，家里一点水都没有", "03.01"),
        ("水质问题", "自来水发黄浑浊，水压小，二次供水水箱很久没清洗", "03.01"),
        ("停电", "我们整栋楼突然停电了，供电公司电话打不通", "03.02"),
        ("", "这个月电费特别高，怀疑电表有问题", "03.02"),
        ("", "家里闻到很浓的煤气味", "03.03"),
        ("暖气不热", "供暖已经开始一周了，暖气片还是凉的，室温只有十五度", "03.03"),
        ("井盖丢失", "路口的井盖丢了，晚上很危险", "04.01"),
        ("", "马路上有个大坑，路灯也不亮，晚上骑车很危险", "04.01"),
        ("公交班次少", "建议增加公交车班次，早高峰等车要四十分钟", "04.02"),
        ("", "出租车司机拒载还绕路", "04.02"),
        ("施工扰民", "工地夜间施工噪音太大，晚上十一点还在打桩", "05.01"),
        ("", "楼下广场舞音响声音太大，每天吵到晚上十点", "05.01"),
        ("扬尘", "工地渣土车不苫盖，扬尘特别严重，到处是灰尘", "05.02"),
        ("", "小区旁边饭馆油烟直排，还有一股恶臭", "05.02"),
        ("欠薪", "公司拖欠三个月工资不发", "06.01"),
        ("", "包工头跑了，我们二十多个农民工的工钱一直拿不到", "06.01"),
        ("社保", "单位一直没交社保，现在医保卡也用不了", "06.02"),
        ("", "想问一下养老金什么时候调整，退休金怎么这么少", "06.02"),
        ("入学问题", "孩子今年上小学，划片学校离家太远，入学太难了", "07.01"),
        ("", "培训机构收了学费就跑了，孩子的课外班也停了", "07.01"),
        ("看病难", "社区医院挂号难，医生态度也不好", "07.02"),
        ("", "在超市买到过期食品，孩子吃了拉肚子，商家不给退", "08.01"),
        ("", "健身房突然关门，会员卡里的钱退不了", "08.01"),
        ("乱收费", "停车场乱收费，没有明码标价", "08.02"),
        ("", "菜市场有个摊位电子秤缺斤少两", "08.02"),
        ("消防隐患", "楼道堆物很多，还有人飞线充电，电动车进楼", "09.01"),
        ("", "小区最近老有小偷，自行车被偷好几辆，希望派出所加强巡逻", "09.01"),
        ("村务问题", "村委会换届选举不公开，村干部把征地补偿款扣下了", "10.01"),
        ("", "镇上占用耕地建厂，土地补偿一直没给到村民", "10.01"),
        ("咨询", "请问办理居住证需要什么材料", "10.02"),
        ("表扬", "感谢社区工作人员，想给他们送一面锦旗", "10.02"),
    ];

    #[test]
    fn realistic_complaints_reach_every_sub_item() {
        let t = default();
        let mut failures = Vec::new();
        for (title, description, expected) in COMPLAINTS {
            let got = classify(&t, title, description);
            if got.sub_item != *expected || got.fallback {
                failures.push(format!("{title}|{description}: expected {expected}, got {got:?}"));
            } else {
                assert_eq!(got.category, &expected[..2]);
                assert!(!got.matched.is_empty());
                assert!((0.0..=1.0).contains(&got.confidence));
            }
        }
        assert!(failures.is_empty(), "misclassified:\n{}", failures.join("\n"));

        for (_, sub) in t.sub_items() {
            assert!(COMPLAINTS.iter().any(|(_, _, code)| *code == sub.code), "no complaint reaches {}", sub.code);
        }
    }

    #[test]
    fn urgency_levels() {
        let t = default();
        let cases = [
            ("", "家里闻到很浓的煤气味", Urgency::Emergency),
            ("着火了", "楼下小饭馆着火了，一直在冒烟", Urgency::Emergency),
            ("", "小区停水两天了", Urgency::Emergency),
            ("", "整栋楼突然停电了", Urgency::Emergency),
            ("电梯困人", "电梯突然停了，有老人被困在里面", Urgency::Emergency),
            ("", "路口的井盖丢失了", Urgency::Emergency),
            ("", "大风把电线刮断了，电线掉落在人行道上", Urgency::Emergency),
            ("", "是不是燃气泄漏了，楼道里味道很大", Urgency::Emergency),
            ("", "违建问题多次反映，一直没解决", Urgency::Complex),
            ("", "这是历史遗留问题，涉及多个部门", Urgency::Complex),
            ("", "楼下广场舞太吵了", Urgency::Normal),
            ("", "物业费太贵", Urgency::Normal),
        ];
        for (title, description, expected) in cases {
            let got = classify(&t, title, description);
            assert_eq!(got.urgency, expected, "{title}|{description}: {got:?}");
        }
    }

    #[test]
    fn emergency_wins_over_complex_and_is_explained() {
        let t = default();
        let got = classify(&t, "又停水了", "小区停水问题已经多次反映，一直没解决");
        assert_eq!(got.urgency, Urgency::Emergency);
        assert_eq!(got.sub_item, "03.01");
        assert!(got.matched.iter().any(|m| m == "停水"));
        assert!(!got.matched.iter().any(|m| m == "多次反映"), "{:?}", got.matched);

        let got = classify(&t, "", "违建问题多次反映，一直没解决");
        assert_eq!(got.urgency, Urgency::Complex);
        assert!(got.matched.contains(&"多次反映".to_owned()));
        assert!(got.matched.contains(&"一直没解决".to_owned()));
    }

    #[test]
    fn gas_smell_is_gas_and_emergency() {
        let got = classify(&default(), "", "家里闻到很浓的煤气味");
        assert_eq!(got.sub_item, "03.03");
        assert_eq!(got.category, "03");
        assert_eq!(got.urgency, Urgency::Emergency);
        assert_eq!(got.matched, ["煤气味"]);
    }

    #[test]
    fn no_match_falls_back_with_zero_confidence() {
        let t = default();
        for (title, description) in [("", ""), ("   ", "，。！"), ("你好", "我找一下张三")] {
            let got = classify(&t, title, description);
            assert_eq!(got.sub_item, "10.02");
            assert_eq!(got.category, "10");
            assert_eq!(got.confidence, 0.0);
            assert!(got.fallback);
            assert!(got.matched.is_empty());
            assert_eq!(got.urgency, Urgency::Normal);
        }
        // Urgency is still assessed when the topic is unknown.
        let got = classify(&t, "", "快来人，有人晕倒了");
        assert!(got.fallback);
        assert_eq!(got.urgency, Urgency::Emergency);
        assert_eq!(got.matched, ["晕倒"]);
    }

    #[test]
    fn fallback_reached_by_its_own_keywords_is_not_a_fallback() {
        let got = classify(&default(), "", "请问办理居住证需要什么材料");
        assert_eq!(got.sub_item, "10.02");
        assert!(!got.fallback);
        assert!(got.confidence > 0.0);
    }

    #[test]
    fn longer_keyword_hides_the_shorter_one_inside_it() {
        let got = classify(&default(), "", "公司拖欠工资");
        assert_eq!(got.sub_item, "06.01");
        assert_eq!(got.matched, ["拖欠工资"]);

        // Across sub-items too: 占用消防通道 (01.03) is not also 消防通道 (09.01).
        let got = classify(&default(), "", "有车占用消防通道");
        assert_eq!(got.sub_item, "01.03");
        assert_eq!(got.matched, ["占用消防通道"]);
    }

    /// Two sub-items with identical evidence, written in reverse order, to check that the
    /// file's order never decides.
    fn tie_taxonomy(reverse: bool) -> Taxonomy {
        let a = r#"[[categories]]
code = "01"
name = "甲"
name_en = "A"
[[categories.sub_items]]
code = "01.01"
name = "甲一"
name_en = "A1"
keywords = ["噪音", "施工"]
"#;
        let b = r#"[[categories]]
code = "02"
name = "乙"
name_en = "B"
[[categories.sub_items]]
code = "02.01"
name = "乙一"
name_en = "B1"
keywords = ["施工", "噪音"]
[[categories.sub_items]]
code = "02.02"
name = "其他"
name_en = "Other"
keywords = ["咨询"]
"#;
        let body = if reverse { format!("{b}{a}") } else { format!("{a}{b}") };
        Taxonomy::parse(&format!("fallback = \"02.02\"\n{body}")).unwrap()
    }

    #[test]
    fn ties_break_by_lower_code_whatever_the_file_order() {
        for reverse in [false, true] {
            let t = tie_taxonomy(reverse);
            for _ in 0..3 {
                let got = classify(&t, "施工", "施工噪音");
                assert_eq!(got.sub_item, "01.01");
                assert_eq!(got.confidence, 0.0, "a tie is a guess");
                assert!(!got.fallback);
            }
        }
    }

    #[test]
    fn title_outweighs_description_and_longer_keywords_outweigh_shorter() {
        let t = default();
        // Same words, swapped between title and description: the title decides.
        assert_eq!(classify(&t, "噪音", "医院").sub_item, "05.01");
        assert_eq!(classify(&t, "医院", "噪音").sub_item, "07.02");
        // 4-character 拖欠工资 (06.01) beats 2-character 物业 (02.01).
        assert_eq!(classify(&t, "", "物业拖欠工资").sub_item, "06.01");
    }

    #[test]
    fn repeated_words_and_stronger_evidence_raise_confidence() {
        let t = default();
        let weak = classify(&t, "", "噪音");
        let strong = classify(&t, "施工扰民", "夜间施工噪音，一直在打桩，噪音太大");
        assert_eq!(weak.sub_item, "05.01");
        assert_eq!(strong.sub_item, "05.01");
        assert!(weak.confidence > 0.0 && weak.confidence < 0.5, "{weak:?}");
        assert!(strong.confidence > 0.9, "{strong:?}");
        assert!(strong.matched.starts_with(&["施工扰民".to_owned()]), "{:?}", strong.matched);

        // A runner-up lowers confidence in the same winner.
        let alone = classify(&t, "", "物业不管");
        let contested = classify(&t, "", "物业不管楼下噪音");
        assert_eq!(contested.sub_item, "02.01");
        assert!(contested.confidence < alone.confidence, "{contested:?} vs {alone:?}");
    }

    #[test]
    fn classification_is_deterministic() {
        let t = default();
        let first = classify(&t, "物业", "电梯坏了，楼道堆物，垃圾没人清理，停车乱收费");
        for _ in 0..10 {
            assert_eq!(classify(&t, "物业", "电梯坏了，楼道堆物，垃圾没人清理，停车乱收费"), first);
        }
        let cloned = t.clone();
        assert_eq!(classify(&cloned, "物业", "电梯坏了，楼道堆物，垃圾没人清理，停车乱收费"), first);
    }
}
