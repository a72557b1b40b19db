//! Emergencies (紧急) by rule: where rules are right. A danger to life must be caught however it
//! is phrased, and a sentence that only imagines one must not be.
//!
//! A trigger is either a phrase of the taxonomy's `[urgency] emergency` list, or a pattern of
//! this module: any word of each group in the same clause ("电梯" + "卡" + "里面有人"), which is
//! how people describe rather than name a danger ("楼道里一股臭鸡蛋味", "人晕过去了叫不醒").
//! A trigger does not count when its clause puts it in doubt before it — a hypothesis (万一,
//! 如果, 要是), a negation (没有, 不是), the past (上周, 以前) — or when the text says the danger is
//! over (现在好了, 已经恢复).

use super::keywords::SEPARATOR;

/// What a trigger is about: a danger to people, or an essential service lost (which is an
/// emergency only when it is lost now, not when it is planned, asked about or keeps happening).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Danger,
    Service,
}

/// Groups of words that together describe a danger; each group is "any of these". A pattern
/// may span up to three clauses of one sentence ("电梯卡住了！人在里面！").
const PATTERNS: &[(Kind, &[&[&str]])] = &[
    // gas, described: a smell of rotten eggs, of gas; a gas pipe broken
    (Kind::Danger, &[&["煤气", "燃气", "天然气", "液化气", "臭鸡蛋"], &["味", "泄", "漏", "呛", "熏", "冒气", "嘶嘶", "挖破", "撞"]]),
    (Kind::Danger, &[&["一股", "好大", "很大", "浓"], &["煤气", "燃气", "天然气", "臭鸡蛋味"]]),
    // fire and smoke
    (Kind::Danger, &[&["着火", "起火", "失火", "火灾", "烧起来", "冒烟", "火光", "烧着了", "冒火", "一股烟"]]),
    // smoke of a colour is a fire where people live; from a chimney or a lorry it is pollution
    (
        Kind::Danger,
        &[&["黑烟", "黄烟", "浓烟"], &["窗户", "窗口", "屋里", "楼道", "家里", "着了", "火苗", "往外冒", "楼上", "门缝", "车里"]],
    ),
    (Kind::Danger, &[&["嘶嘶", "滋滋"], &["味", "漏", "阀门"]]),
    (Kind::Danger, &[&["焦糊味", "焦味", "烧焦"], &["配电", "电表", "电箱", "插座", "电线", "冒火", "蓝光", "噼里啪啦", "车里"]]),
    (Kind::Danger, &[&["配电室", "配电箱", "电表箱", "变压器", "电箱"], &["冒火", "火花", "蓝光", "焦糊", "噼里啪啦", "冒烟"]]),
    (Kind::Danger, &[&["侧翻", "翻了", "泄漏", "漏了"], &["罐车", "油罐", "危化", "化学品"]]),
    (Kind::Danger, &[&["汽油", "煤油", "酒精"], &["身上浇", "往身上", "点了", "点火", "打火机"]]),
    (Kind::Danger, &[&["爆炸", "炸了", "爆燃"]]),
    // people in danger
    (Kind::Danger, &[&["电梯"], &["卡", "困", "关", "掉", "坠"], &["人", "老人", "孩子", "小孩", "出不来", "里面", "里头"]]),
    (Kind::Danger, &[&["电梯"], &["往上冲", "冲顶", "撞到顶", "蹲底", "停不下来", "往下溜", "急坠", "往下坠"]]),
    // a vehicle out of control, or someone on foot where traffic runs fast
    (Kind::Danger, &[&["刹车不灵", "刹车失灵", "刹不住", "方向盘失灵", "自己往下溜", "往下溜车"]]),
    (Kind::Danger, &[&["车"], &["顺着", "自己"], &["往下溜", "往下滑", "溜下去"]]),
    (Kind::Danger, &[&["高速", "快速路", "高架"], &["在走", "步行", "行人", "乱窜", "横穿"]]),
    // someone buried, or gone down into a pit, a well, a septic tank and not come up
    (Kind::Danger, &[&["被埋", "埋到胸", "埋到腰", "埋到脖子", "埋住了", "活埋", "埋在土里", "埋在里面", "埋在下面"]]),
    (
        Kind::Danger,
        &[
            &["化粪池", "窨井", "地窖", "污水井", "沼气池", "罐里", "井里", "井底"],
            &["倒在", "晕", "没动静", "没上来", "上不来", "在底下哭"],
        ],
    ),
    (Kind::Danger, &[&["翻", "摔", "掉", "栽"], &["沟", "坑", "桥下", "河里"], &["起不来", "动不了", "哼哼", "爬不上来", "在底下"]]),
    // a birth that cannot wait, a child missing or shut in, someone followed
    (Kind::Danger, &[&["羊水破", "要生了", "快生了", "大出血", "早产了", "见红了"]]),
    (
        Kind::Danger,
        &[&["孩子", "小孩", "娃", "闺女", "儿子"], &["找不着了", "找不到了", "不见了", "走丢", "抱走", "拐走", "被人接走", "让人接走"]],
    ),
    (Kind::Danger, &[&["车里", "车上", "车内"], &["关着", "锁着", "锁在", "关在"], &["孩子", "小孩", "娃", "老人"]]),
    (Kind::Danger, &[&["跟着我", "尾随", "跟踪我"], &["现在", "还在", "不敢", "身后", "一直"]]),
    // a poisoning: swallowed by mistake, a meal that makes a room sick, numbness spreading
    (Kind::Danger, &[&["误食", "误服", "吃错药", "当糖豆", "嘴唇发麻", "手脚发麻", "不听使唤", "都开始吐", "好几个人吐", "又吐又拉"]]),
    (Kind::Danger, &[&["药"], &["大半瓶", "一整瓶", "整瓶", "一大把"], &["吃", "喝", "吞"]]),
    (Kind::Danger, &[&["冒白烟", "冒黄烟", "毒气", "刺鼻"], &["吐了", "倒下", "睁不开", "晕", "喘不"]]),
    // floods and high water
    (Kind::Danger, &[&["山洪", "洪水", "被水冲", "冲走了", "冲下去", "水还在涨", "水在涨", "决口", "溃坝", "漫堤"]]),
    // something tall working near a live line
    (Kind::Danger, &[&["吊车", "吊臂", "塔吊", "鱼竿", "钓竿"], &["高压线", "电线"]]),
    (
        Kind::Danger,
        &[
            &["晕", "昏", "倒地", "倒在", "摔倒", "推倒"],
            &["叫不醒", "不醒", "没反应", "没意识", "不省人事", "没气", "不动了", "抽搐", "起不来"],
        ],
    ),
    (
        Kind::Danger,
        &[&[
            "叫不醒",
            "叫不应",
            "叫她也不应",
            "叫他也不应",
            "没有呼吸",
            "没呼吸",
            "不省人事",
            "没意识了",
            "心脏病",
            "心梗",
            "脑梗",
            "中风",
            "抽搐",
            "抽起来",
            "翻白眼",
            "口吐白沫",
            "晕过去",
            "喘不上气",
            "喘不过气",
            "上不来气",
            "喘气费劲",
            "呼吸困难",
            "嘴唇发紫",
            "嘴唇都紫",
            "呛住了",
            "噎住了",
            "卡住嗓子",
            "卡嗓子眼",
            "哭不出声",
            "憋得脸",
            "胸口疼得",
            "胸口疼",
            "胸口痛",
            "胸口闷得",
            "说不利索",
            "突然不行了",
            "人不行了",
            "快站不住",
            "吐了好几回",
            "嘴唇发紫",
            "嘴唇都发紫",
            "脸都紫了",
            "烧到四十",
            "浑身冒冷汗",
            "瘫在地上",
            "吐血",
            "一直在吐",
            "一直吐",
            "上吐下泻",
            "瘫倒",
            "瘫在椅子",
        ]],
    ),
    (
        Kind::Danger,
        &[&[
            "流血",
            "出血",
            "血流",
            "一脸血",
            "一身血",
            "满脸是血",
            "头破血流",
            "一摊血",
            "砍伤",
            "捅伤",
            "刺伤",
            "骨折",
            "受伤",
            "被砸",
            "砸伤",
            "磕破",
            "头破了",
            "破了头",
            "摔伤",
            "撞伤",
            "砸到",
        ]],
    ),
    // someone pinned: a person, not "people" anywhere in the sentence ("压着草也没人收")
    (
        Kind::Danger,
        &[
            &["压着", "压住", "被压", "拽不出来", "卡在下面"],
            &["有人", "个人", "人在", "人被", "工人", "腿", "小伙", "老人", "孩子", "骑车"],
        ],
    ),
    (Kind::Danger, &[&["小孩", "孩子"], &["没见大人", "找不着大人", "找不到大人", "没大人管"]]),
    (Kind::Danger, &[&["汽油", "柴油", "油桶"], &["叼着烟", "抽烟", "抽着烟", "淌了一大片", "淌了一地"]]),
    (Kind::Danger, &[&["砸"], &["车窗", "玻璃"], &["还在", "现在还", "下一辆", "正在"]]),
    (Kind::Danger, &[&["动起手来", "动手了", "打架", "斗殴", "打起来", "持刀", "拿刀", "砍人", "动刀", "捅人"]]),
    (Kind::Danger, &[&["刀"], &["比划", "挥", "砍", "捅", "追"]]),
    (Kind::Danger, &[&["撬门", "撬锁", "闯进", "翻进"], &["还在", "正在", "躲在", "不敢出声"]]),
    (Kind::Danger, &[&["跳楼", "轻生", "寻死", "自杀", "不想活", "跳下去", "要跳"]]),
    // someone up where a fall kills, threatening, or a child out beyond a window
    (
        Kind::Danger,
        &[
            &["爬到", "站在", "坐在", "骑在"],
            &["塔吊", "楼顶", "天台", "桥上", "桥栏", "楼边", "窗台", "高压塔"],
            &["不给", "就从", "要跳", "往下跳", "情绪", "激动", "下去"],
        ],
    ),
    (Kind::Danger, &[&["窗户外", "窗外", "空调架", "阳台外", "防盗窗外"], &["小孩", "孩子", "娃"]]),
    // a room, a river bank, a lift shaft that gives way under people
    (
        Kind::Danger,
        &[&["墙", "楼板", "地板", "房梁", "承重"], &["裂宽", "裂开", "往下沉", "下沉", "直掉渣", "鼓起来"], &["不敢", "人", "住"]],
    ),
    (Kind::Danger, &[&["河堤", "堤坝", "大堤", "堤岸", "水库"], &["渗水", "管涌", "掉土", "垮", "离堤顶", "漫过", "裂缝"]]),
    (Kind::Danger, &[&["电梯", "轿厢"], &["空的", "没停", "黑洞洞", "门合不上"], &["踩", "掉", "摔", "人", "孩子"]]),
    // a smell or fume that makes people ill now (a smoky grill that makes them cough is
    // pollution, not this)
    (
        Kind::Danger,
        &[
            &["怪味", "冲鼻子", "刺鼻", "毒气", "白烟", "黄烟"],
            &["头晕", "吐了", "睁不开", "喘不", "晕倒"],
            &["好几个", "孩子", "小孩", "都", "人"],
        ],
    ),
    // many sick at once after the same meal or in the same place
    (
        Kind::Danger,
        &[&["好多", "十几个", "好几个", "一群", "全班", "一桌"], &["孩子", "人", "学生", "老人"], &["拉肚子", "上吐", "发烧", "吐了"]],
    ),
    // a child shut in a car in the sun, knocking at the glass
    (Kind::Danger, &[&["车"], &["小孩", "孩子", "娃"], &["拍玻璃", "拍窗户", "拍车窗", "敲玻璃", "敲车窗"]]),
    // shut in, whatever it is called (电悌, 轿厢)
    (Kind::Danger, &[&["里关着", "里困着", "关在里面", "困在里面", "关在里头", "困在里头"]]),
    // a pipe burst and the water going where people live
    (
        Kind::Danger,
        &[&["管子", "水管", "暖气管", "管道"], &["冻裂", "崩了", "爆了", "裂了"], &["往外冒", "往上喷", "流到", "淹", "一地水", "全是水"]],
    ),
    // a pole or sign about to fall
    (Kind::Danger, &[&["随时可能倒", "随时会倒", "随时要倒", "眼看要倒", "快要倒了", "随时可能砸"]]),
    // fire, as people see it
    (Kind::Danger, &[&["窜火", "蹿火", "火苗子", "冒火苗", "火舌", "烧得噼里啪啦"]]),
    (
        Kind::Danger,
        &[&["溺水", "掉水里", "掉河里", "落水", "掉进", "掉下去", "陷进去", "踩空"], &["水", "河", "湖", "井", "坑", "沟", "孩子", "人"]],
    ),
    (Kind::Danger, &[&["被困", "困住", "困在", "出不来", "救命", "快来人", "锁在车里", "关在车里", "困在车里", "落车上"]]),
    // someone who does not answer, a body gone cold, a stroke, a poisoning, a heart racing
    (
        Kind::Danger,
        &[&["喊", "叫", "拍", "敲门"], &["没反应", "不答应", "也不应", "没动静"], &["人", "他", "她", "老人", "老太", "老大爷", "独居"]],
    ),
    (
        Kind::Danger,
        &[&[
            "身上冰凉",
            "浑身冰凉",
            "半边身子",
            "一边身子动不了",
            "嘴歪",
            "嘴也歪",
            "说胡话",
            "舌头发麻",
            "起水泡",
            "肿得睁不开",
            "说话都不利索",
            "不许出来",
            "关起来了",
            "吐得站不起来",
            "站都站不住",
            "病危",
            "趴方向盘",
            "趴在方向盘",
        ]],
    ),
    (Kind::Danger, &[&["独居"], &["没动静", "没人应", "不开门", "没见"]]),
    (Kind::Danger, &[&["流了", "淌", "好多", "一地", "满地", "直冒"], &["血"]]),
    (Kind::Danger, &[&["透析", "氧气", "呼吸机"], &["停诊", "做不了", "不给做", "断了", "停了", "没了"]]),
    // a structure leaning or swinging over people
    (
        Kind::Danger,
        &[
            &["墙", "架子", "横梁", "限高架", "塔吊", "吊着", "树"],
            &["歪了", "往一边斜", "斜着", "耷拉下来", "打转", "晃过去", "往下掉", "这边歪", "往下倒"],
            &["人", "孩子", "住", "睡", "底下", "小车", "楼顶", "我们楼"],
        ],
    ),
    (Kind::Danger, &[&["山坡", "土坡", "山体", "边坡"], &["裂开", "滑坡", "垮", "出溜", "往下滑"]]),
    (Kind::Danger, &[&["往下陷", "塌陷", "陷下去", "掀翻", "撞翻"], &["路", "车", "人", "摩托"]]),
    (Kind::Danger, &[&["滚烫", "开水", "热水"], &["往下喷", "喷出来", "崩开", "烫伤"]]),
    (Kind::Danger, &[&["超员", "超载"], &["客车", "班车", "大巴", "校车", "面包车"]]),
    // something falling on, pinning or catching people
    (
        Kind::Danger,
        &[
            &["掉下来", "砸下来", "斜吊", "往下扔", "往下砸", "往下掉", "砸在", "压在", "夹住", "夹着", "卷进"],
            &["人", "底下", "下面", "楼下", "砸碎", "过路", "行人", "孩子", "小孩", "婴儿", "床", "胳膊", "腿"],
        ],
    ),
    (Kind::Danger, &[&["撞倒", "撞飞", "轧", "碾"], &["人", "老人", "孩子", "工友", "行人", "骑车"]]),
    (Kind::Danger, &[&["窟窿", "大坑", "深坑", "黑洞"], &["栽", "掉进", "摔进", "看不见", "撬走", "没了"]]),
    // water or sewage pouring into homes now (every time it rains is a pattern, not an emergency)
    (
        Kind::Service,
        &[
            &["水", "粪"],
            &["灌", "淹到", "淹了", "漫过", "倒灌", "反水"],
            &["家", "屋", "住户", "一楼", "门面", "老人", "床", "车库", "地下室"],
        ],
    ),
    (Kind::Danger, &[&["酒气", "喝多", "喝醉", "醉驾", "酒驾"], &["开车", "车开", "司机", "开得"]]),
    // infrastructure that endangers people now
    (
        Kind::Danger,
        &[
            &["井盖", "井口", "井的盖子", "下水道的盖子", "下水道盖"],
            &[
                "盖子没了",
                "没盖子",
                "没了",
                "丢",
                "缺",
                "不见",
                "被偷",
                "掀",
                "移位",
                "塌",
                "翻",
                "碎",
                "空洞",
                "窟窿",
                "哪去了",
                "没影",
                "不翼而飞",
                "敞着",
            ],
        ],
    ),
    (
        Kind::Danger,
        &[&["电线", "高压线", "电缆", "线路"], &["掉", "断", "垂", "耷拉", "冒火", "打火", "火花", "漏电", "裸露", "露出", "着火"]],
    ),
    (Kind::Danger, &[&["漏电", "触电", "电到人", "被电"]]),
    (
        Kind::Danger,
        &[
            &["塌", "坍", "要倒", "快倒", "裂开", "歪过去", "墙都歪"],
            &["房", "楼", "墙", "路", "桥", "地面", "围墙", "屋顶", "天花板", "棚"],
        ],
    ),
    (Kind::Danger, &[&["楼", "房子"], &["在颤", "在晃", "晃动", "摇晃"]]),
    (Kind::Danger, &[&["随时往下掉", "随时会掉", "随时掉下来", "随时可能掉", "摇摇欲坠"]]),
    (Kind::Danger, &[&["护栏", "栏杆"], &["撞断", "撞飞", "断了", "没了"]]),
    (Kind::Danger, &[&["红绿灯", "信号灯"], &["全灭", "灭了", "不亮", "全黑"]]),
    (Kind::Danger, &[&["喷水", "往外喷", "水柱", "淌成河", "水漫", "漫出来", "水管爆", "爆管", "跑水"]]),
    // essential services lost now
    (
        Kind::Service,
        &[
            &["停电", "断电", "没电", "跳闸", "不来电", "一点电都"],
            &["整栋", "整个", "整片", "全楼", "全都", "都", "家里", "楼", "单元", "小区", "一片", "整条街", "全村", "全组", "全屯"],
        ],
    ),
    (Kind::Service, &[&["黑了", "黑着", "黑灯", "一片漆黑", "全黑"], &["整栋", "整个", "全楼", "单元", "小区", "家里", "整条街", "全村"]]),
    // heating lost in a hard frost: pipes freeze and babies and the bedridden are at risk
    (Kind::Service, &[&["暖气", "供暖"], &["突然停", "全停了", "停了", "爆了"], &["零下", "冰天雪地"]]),
    (Kind::Service, &[&["停水", "断水", "没水", "没有水", "无水", "不出水", "一滴水", "一滴都没", "一点水都没", "一点水也没", "一点水没"]]),
];

/// Words that put what follows in their clause in doubt: a hypothesis, a negation, a worry,
/// the past, a belief, prevention.
const DOUBT: &[&str] = &[
    "万一",
    "如果",
    "要是",
    "假如",
    "假设",
    "真要",
    "不像",
    "一旦",
    "倘若",
    "若是",
    "以防",
    "防止",
    "避免",
    "预防",
    "提醒",
    "防",
    "担心",
    "怕",
    "恐怕",
    "会不会",
    "可能会",
    "容易",
    "隐患",
    "风险",
    "没有",
    "没",
    "未",
    "不是",
    "并非",
    "不会",
    "差点",
    "以为",
    "咨询",
    "请问",
    "想问",
    "听说",
];

/// The past: what it starts was, unless it lasts until now ("从前天晚上到现在一滴水都没有").
const PAST: &[&str] = &[
    "以前",
    "之前",
    "上次",
    "上周",
    "上礼拜",
    "上星期",
    "上个月",
    "上月",
    "去年",
    "前年",
    "前几天",
    "昨晚",
    "昨天",
    "昨儿",
    "前天",
    "曾经",
    "过去",
];

/// Words that carry the past into the present.
const UNTIL_NOW: &[&str] = &["到现在", "至今", "到今天", "直到现在", "现在还"];

/// Words that make a lost service a matter of planning or of a pattern, not of now.
const NOT_NOW: &[&str] = &[
    "接到通知",
    "发了通知",
    "通知说",
    "通知只",
    "提前通知",
    "停水的通知",
    "停电的通知",
    "计划",
    "每次",
    "天天",
    "隔三差五",
    "一开",
    "一到",
    "每周",
    "每月",
    "每年",
    "经常",
    "频繁",
    "三天两头",
    "动不动",
    "年年",
    "老是",
    "总是",
    "明天",
    "后天",
    "下周",
    "几点到几点",
    "要停",
    "预计",
    "为啥",
    "为什么",
    "多次",
    "一下雨",
    "一下大雨",
    "每逢",
    "常年",
    "第三回",
    "第三次",
    "好几回",
    "好几次",
    "到几点",
];

/// Words that say a danger is over.
const OVER: &[&str] = &[
    "现在好了",
    "已经好了",
    "已经恢复",
    "已恢复",
    "已经修好",
    "已修好",
    "已经来电",
    "已经来水",
    "来电了",
    "早来了",
    "已经处理",
    "已处理好",
    "已经解决",
    "没事了",
    "没啥事",
    "人没事",
    "已经出院",
    "已经回家",
    "消停了",
    "已扑灭",
    "已经扑灭",
    "已劝止",
    "已现场劝止",
    "已制止",
    "无危险",
    "没有危险",
    "暂无危险",
];

/// Words that make the whole text about dangers rather than a danger: a drill, a talk.
const ABOUT_DANGER: &[&str] = &["演练", "演习", "宣传", "培训", "安全讲座", "消防讲座", "健康讲座", "科普", "知识"];

/// The lost-service words among the taxonomy's phrases.
const SERVICE_WORDS: &[&str] = &["停水", "断水", "没水", "没有水", "不出水", "停电", "断电", "没电"];

/// Whether `normalized` text (see [`super::keywords::normalize`]) describes an emergency, and
/// the words that said so.
pub fn emergency(normalized: &str, phrases: &[String]) -> Option<Vec<String>> {
    if OVER.iter().chain(ABOUT_DANGER).any(|o| normalized.contains(o)) {
        return None;
    }
    // "没电梯" (no lift in the building) is not "没电" (no power), and
    // "水没过车轱辘" (water up over the wheels) is not a negation, and a drum kit (架子鼓) is no
    // fight (打架).
    let normalized = &normalized.replace("没电梯", "无电梯").replace("没过", "漫过").replace("架子鼓", "鼓");
    let not_now = NOT_NOW.iter().any(|w| normalized.contains(w));
    let clauses: Vec<&str> = normalized.split(SEPARATOR).filter(|c| !c.is_empty()).collect();
    let mut found = Vec::new();
    for (i, clause) in clauses.iter().enumerate() {
        let doubted = |text: &str, at: usize, len: usize| {
            let before = &text[..at];
            // "盖子没了" (the cover is gone) is a loss, not a "没" that negates what follows it.
            let negating = before.replace("没了", "丢了");
            DOUBT.iter().any(|d| negating.contains(d))
                || (PAST.iter().any(|d| before.contains(d)) && !UNTIL_NOW.iter().any(|w| text.contains(w)))
                // negated right before ("打不着火", "有没有水"), or told as an experience ("晕倒过")
                || before.ends_with(['不', '没', '未', '别'])
                // a degree, not a state: "挤得喘不上气"
                || before.ends_with('得')
                || (before.ends_with('有') && text[at..].starts_with('没'))
                || text[at + len..].starts_with('过')
        };
        for phrase in phrases {
            let service = SERVICE_WORDS.iter().any(|w| phrase.contains(w));
            if let Some(at) = clause.find(phrase.as_str())
                && !doubted(clause, at, phrase.len())
                && !(service && not_now)
            {
                found.push(phrase.clone());
            }
        }
        // Up to three clauses of one sentence, starting here.
        // Joined at their separator, so that what ends one clause never reads as the start of
        // the next ("超员" then "过道里" is no "超员过", an experience).
        let window = clauses[i..clauses.len().min(i + 3)].join(SEPARATOR.encode_utf8(&mut [0; 4]));
        for (kind, pattern) in PATTERNS {
            if *kind == Kind::Service && not_now {
                continue;
            }
            let mut words = Vec::new();
            let (mut first, mut last) = (usize::MAX, None);
            let all = pattern.iter().all(|group| {
                // The earliest word of the group in the window.
                group.iter().filter_map(|w| window.find(w).map(|at| (at, *w))).min().is_some_and(|(at, w)| {
                    first = first.min(at);
                    if last.is_none_or(|(l, _)| at > l) {
                        last = Some((at, w.len()));
                    }
                    words.push(w);
                    true
                })
            });
            // The pattern must start in this clause (later windows report the others), and
            // nothing up to its last word may put it in doubt.
            if let (true, Some((at, len))) = (all, last)
                && first < clause.len()
                && !doubted(&window, at, len)
            {
                found.push(words.join("+"));
            }
        }
    }
    found.sort();
    found.dedup();
    (!found.is_empty()).then_some(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keywords::normalize;

    fn is_emergency(text: &str) -> bool {
        emergency(&normalize(text), &["燃气泄漏".to_string()]).is_some()
    }

    #[test]
    fn dangers_described_the_way_people_speak() {
        for text in [
            "楼道里一股臭鸡蛋味，呛得人头疼",
            "老人晕过去了，叫不醒",
            "整个单元都没电了",
            "电梯卡在五楼了，里面有个老人出不来",
            "路口井盖没了，车差点掉进去",
            "两个人打起来了，一个满脸是血",
            "我爸心脏病犯了",
            "三楼窗户冒烟了",
            "电线掉下来耷拉在人行道上",
            "燃气泄漏了",
            "招牌一头掉下来了，斜吊着，底下全是过路的人",
            "楼上有人往下扔花盆，底下有推婴儿车的",
            "化粪池往上反，粪水往一楼住户家里灌",
            "我妈突然半边身子动不了，嘴也歪了",
            "喊他半天没反应，人趴在方向盘上",
            "对门独居的老太太敲门也没动静",
            "头磕在地上流了好多血",
            "快车道上有个黑窟窿，盖子让人撬走了",
            "透析中心停诊了，病人今天做不了",
            "配电室里噼里啪啦响，一闪一闪冒蓝光",
            "灶台底下嘶嘶地响，一股怪味",
            "罐车侧翻了，液体往沟里淌",
            "工友拎着汽油往自己身上浇，手里攥着打火机",
            "秋千的架子往一边斜，孩子还在上面",
            "山坡裂开一道大口子，土一直往下出溜",
            "地下车库进水了，水已经没过车轱辘，还在往里灌",
            "外墙一块接一块往下掉，楼下的车玻璃已经砸碎了",
            "两拨人动起手来了，有个大妈被推倒了起不来",
            "路口一个小孩自己站着哭，周围没见大人",
            "有人拿砖头砸车窗玻璃，现在还在往前找下一辆",
            "孩子抹了祛痘膏，满脸起水泡",
            "工地上有人站在楼顶说要跳楼",
            "边上的土一下子塌了，干活的人被埋到胸口",
            "化粪池里一个工人下去就没动静了",
            "我老婆羊水破了，车出不去",
            "有个男的一直跟着我，现在就在我身后",
            "孩子在幼儿园让人接走了，现在找不着了",
            "公交车里关着个小孩，司机锁了车走了",
            "孩子把降压药当糖豆吃了大半瓶",
            "吃完河豚嘴唇发麻，手脚不听使唤",
            "司机喊刹车不灵了，车正顺着大坡往下溜",
            "山洪下来了，三轮车让水冲下去了",
            "高速应急车道上有个老爷子在走，说不清家在哪",
            "吊车的吊臂离高压线就一两米",
            "电梯停不下来了，一直往上冲",
            "人行道上一个洞，井盖不知道哪去了",
            "骑三轮的连人带车翻沟里了，人在下面哼哼起不来",
            "村里变压器的铜线让人偷了，全组一点电都不来",
            "咋又没电了，整条街都黑着",
            "零下十八度，整栋楼暖气突然停了",
            // clauses are read apart: "超员" is not "超员过", an experience
            "长途班车严重超员，过道里都站满了人",
            "三轮车翻了，车底下压着个人",
            "下水道的盖子没了，就剩一个黑窟窿",
            "我们这楼从前天晚上到现在一滴水都没有，好几百户啊",
            "一股冲鼻子的怪味，好几个邻居头晕，还有个小孩吐了",
            "有个工友爬到塔吊上去了，说不给工钱就从上面下去",
            "孩子吃东西一下子呛住了，脸憋得通红哭不出声",
            "电悌里关着俺家孙子，里面灯也灭了",
            "墙里的水管冻裂了，水呲呲往外冒，都流到楼下人家去了",
            "河堤渗水了，水离堤顶不到半米",
            "楼道里的电瓶车砰的一声，往外窜火苗子",
        ] {
            assert!(is_emergency(text), "{text}");
        }
    }

    #[test]
    fn imagined_denied_or_past_dangers_are_not_emergencies() {
        for text in [
            "万一着火了，消防车都进不来",
            "如果停电了电梯怎么办",
            "上周停过电，现在好了",
            "没闻到煤气味，但是灶台打不着火",
            "楼道堆满杂物，担心起火",
            "想问一下明天是不是要停水",
            "小区组织了消防演练，讲了着火怎么逃生",
            "又停电了，这礼拜第三回",
            "今天停水到几点啊",
            "真要有个火情，车进不来可就完了",
            "一下大雨积水就往一楼住户家里倒灌",
            "油烟顺着烟道往各家厨房里倒灌",
            "护栏倒在地上了，麻烦派人扶起来",
            "砖窑厂烟囱一天到晚冒黄烟",
            "搬家公司说没电梯要加一百",
            "身上起了红疙瘩，不像是中毒",
            "楼上天天打架子鼓",
            "长期护理保险咋申请？我爸瘫在床上好几年了",
            "已当场进行一氧化碳中毒风险提示",
            "共享单车扔进了绿化带，压着草也没人收",
            "前天停了一天水，昨晚来了",
            "隔壁工地在烧废木料，烟大得很，熏得人直咳嗽",
        ] {
            assert!(!is_emergency(text), "{text}");
        }
    }
}
