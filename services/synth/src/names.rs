//! Chinese names: surnames by approximate frequency, given names from common characters.

use rand::Rng;

/// The most common surnames with rough weights (per mille of the population).
const SURNAMES: &[(&str, u32)] = &[
    ("王", 72),
    ("李", 71),
    ("张", 69),
    ("刘", 54),
    ("陈", 45),
    ("杨", 32),
    ("赵", 23),
    ("黄", 22),
    ("周", 21),
    ("吴", 20),
    ("徐", 17),
    ("孙", 16),
    ("胡", 13),
    ("朱", 13),
    ("高", 13),
    ("林", 12),
    ("何", 12),
    ("郭", 12),
    ("马", 11),
    ("罗", 9),
    ("梁", 9),
    ("宋", 8),
    ("郑", 8),
    ("谢", 7),
    ("韩", 7),
    ("唐", 7),
    ("冯", 7),
    ("于", 6),
    ("董", 6),
    ("萧", 6),
    ("程", 6),
    ("曹", 6),
    ("袁", 5),
    ("邓", 5),
    ("许", 5),
    ("傅", 5),
    ("沈", 5),
    ("曾", 5),
    ("彭", 5),
    ("吕", 5),
    ("苏", 5),
    ("卢", 5),
    ("蒋", 5),
    ("蔡", 5),
    ("贾", 4),
    ("丁", 4),
    ("魏", 4),
    ("薛", 4),
    ("叶", 4),
    ("阎", 4),
    ("毕", 3),
    ("房", 3),
    ("欧阳", 1),
    ("司马", 1),
    ("诸葛", 1),
];

const MALE_CHARS: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "明", "超", "刚", "平", "辉", "鹏", "华", "飞", "鑫", "波", "斌", "宇", "浩", "凯", "健",
    "俊", "帆", "帅", "旭", "宁", "龙", "林", "博", "文", "志", "建", "国", "成", "亮", "晨", "阳", "峰", "海", "东", "振", "家", "子",
    "轩", "睿", "泽", "昊",
];

const FEMALE_CHARS: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "燕", "玲", "桂", "英", "秀", "红", "梅", "琳", "婷", "雪", "慧", "颖", "倩", "洁",
    "佳", "欣", "怡", "萱", "涵", "悦", "彤", "琪", "雨", "嘉", "晓", "瑶", "馨", "诗", "思", "梓", "晶", "月", "兰", "凤", "春", "莉",
    "萍", "宁", "文", "子",
];

fn total_weight() -> u32 {
    SURNAMES.iter().map(|(_, w)| w).sum()
}

pub fn surname(rng: &mut impl Rng) -> &'static str {
    let mut pick = rng.random_range(0..total_weight());
    for (name, weight) in SURNAMES {
        if pick < *weight {
            return name;
        }
        pick -= weight;
    }
    SURNAMES[0].0
}

/// A one- or two-character given name.
pub fn given_name(rng: &mut impl Rng, male: bool) -> String {
    let chars = if male { MALE_CHARS } else { FEMALE_CHARS };
    let first = chars[rng.random_range(0..chars.len())];
    if rng.random_bool(0.3) {
        first.to_string()
    } else {
        format!("{first}{}", chars[rng.random_range(0..chars.len())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn names_are_chinese_and_bounded() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..1000 {
            let male = rng.random_bool(0.5);
            let name = format!("{}{}", surname(&mut rng), given_name(&mut rng, male));
            let n = name.chars().count();
            assert!((2..=4).contains(&n), "{name}");
        }
    }
}
