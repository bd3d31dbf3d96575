# پیام‌های MRJBot به فارسی. کلیدها و توضیح‌ها در en/main.ftl است.
# اعداد را کد با ارقام فارسی می‌نویسد؛ تاریخ (شمسی) و حجم‌ها به‌صورت متن آماده می‌رسند.

## Counts

days-count = { $days } روز

## Subscription page and link remarks

sub-page-title = اشتراک شما

sub-status-active = فعال
sub-status-on_hold = با اولین اتصال فعال می‌شود
sub-status-limited = حجم تمام شده
sub-status-expired = منقضی شده
sub-status-disabled = غیرفعال
sub-status-temporary = دسترسی موقت تا تأیید پرداخت

sub-expires = اعتبار تا { $date }
sub-never-expires = بدون محدودیت زمانی
sub-days-left = { $days } روز باقی‌مانده

sub-data-used = { $used } از { $total } مصرف شده
sub-data-unlimited = حجم نامحدود
sub-data-left = { $left } باقی‌مانده

sub-link = لینک اشتراک
sub-copy = کپی
sub-copied = کپی شد
sub-qr = با برنامهٔ VPN خود اسکن کنید
sub-import = افزودن به برنامه
sub-apps = برنامه‌ها
sub-apps-help = یک برنامه نصب کنید، سپس دکمهٔ آن را بزنید یا کد QR را اسکن کنید.
sub-configs = کانفیگ‌های جداگانه
sub-support = پشتیبانی
sub-renew = تمدید در ربات

sub-inactive-remark = { $status } — تمدید در { $bot }

sub-updated = آخرین به‌روزرسانی
sub-platform-android = اندروید
sub-platform-ios = آیفون
sub-platform-windows = ویندوز
sub-platform-macos = مک
sub-platform-linux = لینوکس
sub-no-configs = هنوز سروری برای اشتراک شما تعیین نشده است

## Payment notices (sent to the customer)
pay-approved = ✅ پرداخت { $amount } برای سفارش #{ $order } تأیید شد. سرویس شما در حال آماده‌سازی است.
pay-surplus-to-wallet = 💰 مبلغ { $amount } برای سفارش #{ $order } که قبلاً پرداخت شده بود دریافت شد و به کیف پول شما اضافه شد.
pay-rejected = ❌ پرداخت سفارش #{ $order } پذیرفته نشد: { $reason }
refund-to-wallet = 💰 مبلغ { $amount } به کیف پول شما بازگشت. دلیل: { $reason }
refund-to-payer = 💸 مبلغ { $amount } به روش پرداخت شما بازگشت داده شد. دلیل: { $reason }
order-delivered = 🎉 سفارش #{ $order } آماده است. برای دریافت لینک به «سرویس‌های من» بروید.
order-failed-refunded = ⚠️ تحویل سفارش #{ $order } ممکن نشد و مبلغ { $amount } به کیف پول شما بازگشت. از این بابت پوزش می‌خواهیم.

## Referrals (sent to the referrer)
referral-rewarded = 🎁 یکی از دوستانی که دعوت کرده بودید اولین خرید خود را انجام داد و { $points } امتیاز گرفتید.
