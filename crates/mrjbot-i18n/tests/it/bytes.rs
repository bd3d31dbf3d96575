use mrjbot_i18n::{Lang, format_bytes};

const KB: u64 = 1024;
const MB: u64 = 1024 * KB;
const GB: u64 = 1024 * MB;
const TB: u64 = 1024 * GB;

#[test]
fn small_counts_are_bytes() {
    assert_eq!(format_bytes(0, Lang::En), "0 B");
    assert_eq!(format_bytes(0, Lang::Fa), "۰ بایت");
    assert_eq!(format_bytes(0, Lang::Ru), "0 Б");
    assert_eq!(format_bytes(512, Lang::En), "512 B");
    assert_eq!(format_bytes(1023, Lang::En), "1,023 B");
}

#[test]
fn one_decimal_below_one_hundred_units() {
    assert_eq!(format_bytes(KB, Lang::En), "1 KB");
    assert_eq!(format_bytes(KB + KB / 2, Lang::En), "1.5 KB");
    assert_eq!(format_bytes(GB * 25 / 2, Lang::En), "12.5 GB");
    assert_eq!(format_bytes(GB * 25 / 2, Lang::Fa), "۱۲٫۵ گیگابایت");
    assert_eq!(format_bytes(GB * 25 / 2, Lang::Ru), "12,5 ГБ");
    assert_eq!(format_bytes(GB * 9_96 / 100, Lang::En), "10 GB");
    assert_eq!(format_bytes(MB * 3, Lang::Ru), "3 МБ");
    assert_eq!(format_bytes(MB * 3, Lang::Fa), "۳ مگابایت");
}

#[test]
fn whole_numbers_from_one_hundred_units() {
    assert_eq!(format_bytes(50 * GB, Lang::En), "50 GB");
    assert_eq!(format_bytes(GB * 9996 / 100, Lang::En), "100 GB");
    assert_eq!(format_bytes(250 * GB + 300 * MB, Lang::En), "250 GB");
    assert_eq!(format_bytes(KB * 1023 + 100, Lang::En), "1,023 KB");
}

#[test]
fn rounding_up_to_1024_moves_to_the_next_unit() {
    assert_eq!(format_bytes(MB - 1, Lang::En), "1 MB");
    assert_eq!(format_bytes(GB - MB / 4, Lang::En), "1 GB");
    assert_eq!(format_bytes(TB - 1, Lang::Ru), "1 ТБ");
}

#[test]
fn terabytes_are_the_largest_unit() {
    assert_eq!(format_bytes(5 * TB, Lang::En), "5 TB");
    assert_eq!(format_bytes(5 * TB, Lang::Fa), "۵ ترابایت");
    assert_eq!(format_bytes(2048 * TB, Lang::En), "2,048 TB");
    assert_eq!(format_bytes(u64::MAX, Lang::En), "16,777,216 TB");
}
