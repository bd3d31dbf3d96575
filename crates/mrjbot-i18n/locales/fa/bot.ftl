# ربات تلگرام، به فارسی. کلیدها و توضیح‌ها در en/bot.ftl است.
# متن‌ها HTML تلگرام هستند: تگ‌های <b>، <i> و <code> را متوازن نگه دارید و & < > را فقط به‌صورت
# entity بنویسید. مبلغ‌ها، تاریخ‌ها و حجم‌ها آماده و قالب‌بندی‌شده می‌رسند.

## Commands (the bot's menu button)
bot-cmd-start = منوی اصلی
bot-cmd-buy = خرید سرویس VPN
bot-cmd-services = سرویس‌های من
bot-cmd-wallet = کیف پول
bot-cmd-support = پشتیبانی
bot-cmd-help = راهنما
bot-cmd-faq = سوالات متداول
bot-cmd-language = زبان

## General
bot-amount-toman = { $amount } تومان
bot-unlimited = نامحدود
bot-not-started = از اولین اتصال شروع می‌شود
# فارسی صورت جمع ندارد: «۱ کاربره»، «۲ کاربره».
bot-devices = { $n } کاربره
bot-devices-unlimited = کاربر نامحدود
bot-welcome-choose-language = 👋 خوش آمدید! لطفاً زبان خود را انتخاب کنید:
bot-choose-language = 🌐 زبان خود را انتخاب کنید:
bot-language-set = زبان ذخیره شد
bot-menu = 👋 سلام { $name } عزیز! چه کاری برایتان انجام دهم؟
bot-use-buttons = لطفاً از دکمه‌های زیر استفاده کنید.
bot-not-understood = متوجه پیام شما نشدم.
bot-unknown-command = این دستور را نمی‌شناسم. منوی اصلی:
bot-cancelled = لغو شد.
bot-stale-button = این دکمه قدیمی شده است. اطلاعات به‌روز را این‌جا می‌بینید.
bot-slow-down = ⏳ پیام‌ها را خیلی سریع می‌فرستید. لطفاً یک دقیقه صبر کنید و دوباره امتحان کنید.
bot-banned = ⛔ حساب کاربری شما مسدود شده است. اگر فکر می‌کنید اشتباهی رخ داده، با پشتیبانی در تماس باشید.
bot-join-required = 📢 برای استفاده از ربات، ابتدا در کانال ما { $channel } عضو شوید و سپس دکمهٔ «عضو شدم» را بزنید.
bot-thanks-joined = ممنون که عضو کانال شدید!
bot-not-joined-yet = هنوز در کانال عضو نشده‌اید.

## Buttons
bot-btn-buy = 🛒 خرید سرویس
bot-btn-services = 📦 سرویس‌های من
bot-btn-trial = 🎁 تست رایگان
bot-btn-wallet = 👛 کیف پول
bot-btn-referral = 👥 دعوت از دوستان
bot-btn-support = 💬 پشتیبانی
bot-btn-help = ❓ راهنما
bot-btn-language = 🌐 زبان
bot-btn-admin = 🛠 پنل مدیریت
bot-btn-menu = 🏠 منوی اصلی
bot-btn-back = ◀️ بازگشت
bot-btn-join-channel = 📢 عضویت در کانال
bot-btn-joined = ✅ عضو شدم
bot-btn-discount = 🏷 کد تخفیف
bot-btn-cancel-order = ✖️ لغو سفارش
bot-btn-pay = 💳 پرداخت { $amount }
bot-btn-link = 🔗 لینک و QR
bot-btn-renew = 🔄 تمدید
bot-btn-traffic = ➕ حجم اضافه
bot-btn-rotate = ♻️ لینک جدید
bot-btn-move = 🌍 تغییر لوکیشن
bot-btn-yes-rotate = ✅ بله، لینک جدید
bot-btn-no = ✖️ خیر
bot-btn-apps = 📲 آموزش اتصال
bot-btn-trial-take = 🎁 دریافت تست رایگان
bot-btn-topup = ➕ شارژ کیف پول
bot-btn-redeem = 🎯 تبدیل امتیاز به اعتبار
bot-btn-ticket-new = ✍️ پیام جدید
bot-btn-tickets = 📋 تیکت‌های من
bot-btn-reply = ✍️ پاسخ
bot-btn-close-ticket = ✅ بستن تیکت
bot-btn-approve = ✅ تأیید
bot-btn-reject = ❌ رد
bot-btn-answer = ✍️ پاسخ دادن
bot-btn-stats = 📊 آمار
bot-btn-queue = 🧾 رسیدها
bot-btn-nodes = 🖥 نودها
bot-btn-broadcast = 📣 پیام همگانی
bot-btn-send = ✅ ارسال
bot-btn-cancel = ✖️ انصراف
bot-btn-refresh = 🔄 به‌روزرسانی
bot-btn-ban = ⛔ مسدود کردن
bot-btn-unban = ✅ رفع مسدودیت

## Catalog and checkout
bot-catalog-empty = در حال حاضر سرویسی برای فروش موجود نیست. لطفاً کمی بعد دوباره سر بزنید.
bot-choose-location = 🌍 لوکیشن موردنظر را انتخاب کنید:
bot-choose-ip-type = 📍 { $location }: نوع آی‌پی را انتخاب کنید:
bot-ip-explain = <b>آی‌پی ثابت</b> آدرس سرور را همیشه ثابت نگه می‌دارد (مناسب برای بانک و بازی). <b>آی‌پی متغیر</b> شما را به‌طور خودکار به یک سرور سالم منتقل می‌کند.
bot-ip-constant = 📌 آی‌پی ثابت
bot-ip-dynamic = 🔀 آی‌پی متغیر
bot-choose-duration = ⏳ مدت زمان سرویس را انتخاب کنید:
bot-choose-plan = 📦 یک پلن انتخاب کنید (حجم · تعداد کاربر · قیمت):
bot-plan-card =
    <b>{ $name }</b>
    📍 { $location } · { $iptype }
    ⏳ { $days }
    📶 { $data }
    📱 { $devices }
bot-plan-unavailable = این پلن دیگر موجود نیست.
bot-choose-method = 💳 روش پرداخت را انتخاب کنید:
bot-renew-choose-method = 🔄 تمدید با همان پلن فعلی. روش پرداخت را انتخاب کنید:
bot-traffic-choose = ➕ چه مقدار حجم اضافه نیاز دارید؟
bot-traffic-choose-method = ➕ { $data } حجم اضافه. روش پرداخت را انتخاب کنید:
bot-topup-choose = ➕ چه مبلغی می‌خواهید شارژ کنید؟ یکی از مبلغ‌ها را انتخاب کنید یا مبلغ دلخواه را به تومان بنویسید.
bot-topup-choose-method = ➕ شارژ کیف پول به مبلغ { $amount }. روش پرداخت را انتخاب کنید:
bot-topup-bad-amount = لطفاً مبلغی بین ۱۰٬۰۰۰ تا ۱۰۰٬۰۰۰٬۰۰۰ تومان را فقط با عدد وارد کنید.
bot-no-methods = در حال حاضر هیچ روش پرداختی برای این مورد فعال نیست. لطفاً با پشتیبانی در تماس باشید.
bot-discount-ask = 🏷 کد تخفیف خود را وارد کنید:
bot-discount-ok = ✅ کد تخفیف پذیرفته شد: { $off } تخفیف.
bot-discount-applied = 🏷 کد تخفیف <b>{ $code }</b> روی خرید شما اعمال می‌شود.
bot-discount-off = 🏷 تخفیف: { $off }
bot-method-card = 💳 کارت به کارت
bot-method-wallet = 👛 کیف پول
bot-method-zarinpal = 🟡 زرین‌پال
bot-method-yookassa = 🟢 یوکاسا
bot-method-stars = ⭐ استارز تلگرام
bot-method-cryptopay = 💎 ارز دیجیتال
bot-card-instructions =
    🧾 <b>سفارش #{ $order }</b>

    لطفاً دقیقاً مبلغ <b>{ $amount }</b> را به این کارت واریز کنید:
    { $card }
    👤 { $owner } { $bank }

    سپس عکس رسید را همین‌جا ارسال کنید. لطفاً پیش از { $deadline } واریز کنید.
bot-paid-from-wallet = ✅ مبلغ { $amount } برای سفارش #{ $order } از کیف پول شما پرداخت شد. سرویس شما در حال آماده‌سازی است.
bot-pay-online = 🧾 <b>سفارش #{ $order }</b>: { $amount } از طریق { $method }. برای پرداخت دکمهٔ زیر را بزنید؛ به‌محض تأیید پرداخت، همین‌جا به شما خبر می‌دهیم.
bot-order-cancelled = سفارش لغو شد.

## Receipts
bot-receipt-received = 📨 رسید پرداخت #{ $id } دریافت شد. به‌زودی بررسی می‌شود و نتیجه را همین‌جا به شما اطلاع می‌دهیم.
bot-receipt-send-photo = لطفاً رسید را به‌صورت عکس ارسال کنید.
bot-receipt-too-big = حجم این عکس بیش از حد مجاز است (حداکثر ۱۰ مگابایت).
bot-receipt-download-failed = دریافت این عکس ممکن نشد. لطفاً دوباره ارسال کنید.
bot-photo-unexpected = منتظر عکس نبودم. اگر رسید پرداخت است، ابتدا مراحل پرداخت را شروع کنید.

## Delivery and services
bot-delivered = 🎉 سفارش #{ $order } آماده است!
bot-delivered-wallet = ✅ سفارش #{ $order } انجام شد: کیف پول شما شارژ شد.
bot-link-title = 🔗 <b>لینک اشتراک شما</b> — آن را به برنامهٔ VPN خود اضافه کنید:
bot-link-revoked = این سرویس در حال حاضر لینک اشتراک ندارد. برای دریافت لینک، دکمهٔ «لینک جدید» را بزنید.
bot-sub-card =
    { $emoji } <b>سرویس #{ $id }</b> — { $status }
    📅 انقضا: { $expires } ({ $left } باقی‌مانده)
    📶 حجم مصرفی: { $used } از { $limit } ({ $dataleft } باقی‌مانده)
bot-sub-disabled-note = این سرویس غیرفعال است. برای اطلاعات بیشتر با پشتیبانی در تماس باشید.
bot-services-title = 📦 سرویس‌های شما:
bot-no-services = هنوز سرویسی ندارید.
bot-rotate-confirm = ♻️ لینک جدید دریافت می‌کنید؟ لینک قبلی بلافاصله از کار می‌افتد و باید لینک جدید را در همهٔ دستگاه‌ها وارد کنید.
bot-rotated = لینک جدید صادر شد
bot-move-choose = 🌍 لوکیشن جدید را انتخاب کنید:
bot-move-none = در حال حاضر لوکیشن دیگری در دسترس نیست.
bot-moved = ✅ لوکیشن تغییر کرد. لطفاً اشتراک را در برنامهٔ خود آپدیت کنید.
bot-apps-intro = 📲 <b>آموزش اتصال</b>: یک برنامه نصب کنید، لینک اشتراک خود را کپی کنید و در برنامه گزینهٔ «Import from clipboard» را بزنید (یا کد QR را اسکن کنید).
bot-remind-expiry = ⏰ سرویس #{ $id } تا { $days } دیگر ({ $date }) به پایان می‌رسد. برای قطع نشدن اتصال، همین حالا تمدید کنید.
bot-remind-data = 📶 سرویس #{ $id } { $percent }٪ از حجم خود را مصرف کرده است؛ { $left } باقی مانده.
bot-remind-data-out = 📶 حجم سرویس #{ $id } تمام شده است. برای ادامه، حجم اضافه بخرید یا سرویس را تمدید کنید.

## Trial, wallet, referrals
bot-trial-offer = 🎁 سرویس ما را رایگان امتحان کنید: { $data } به مدت { $hours } ساعت، فقط یک بار برای هر کاربر.
bot-trial-used = شما قبلاً از تست رایگان استفاده کرده‌اید. برای ادامه یک پلن انتخاب کنید.
bot-trial-off = در حال حاضر تست رایگان فعال نیست.
bot-trial-given = 🎁 اکانت تست شما آماده است. لذت ببرید!
bot-wallet = 👛 <b>کیف پول</b>
    موجودی: { $balance }
bot-referral =
    👥 <b>دعوت از دوستان</b>
    لینک خود را برای دوستانتان بفرستید؛ با اولین خرید هر دوست، امتیاز می‌گیرید.

    { $link }

    دعوت‌شده‌ها: { $invited } · خرید کرده‌اند: { $rewarded }
    امتیاز: <b>{ $points }</b> (ارزش هر امتیاز: { $value })
bot-redeemed = 🎯 مبلغ { $amount } به کیف پول شما اضافه شد.

## Support
bot-help = ❓ <b>راهنما</b>
    از 🛒 خرید سرویس کنید، لینک‌هایتان را در 📦 سرویس‌های من پیدا کنید و هر زمان خواستید از 💬 پشتیبانی به ما پیام بدهید.
bot-faq-title = <b>سوالات متداول:</b>
bot-support = 💬 <b>پشتیبانی</b>
    پیام خود را بنویسید؛ همکاران ما همین‌جا پاسخ می‌دهند.
bot-ticket-ask = ✍️ پیام خود را بنویسید (در قالب یک پیام؛ بعداً می‌توانید پیام‌های بیشتری اضافه کنید):
bot-ticket-opened = 📨 تیکت #{ $id } ارسال شد. پاسخ را همین‌جا دریافت می‌کنید.
bot-ticket-reply-ask = ✍️ پاسخ خود را بنویسید:
bot-ticket-closed = تیکت بسته شد
bot-tickets-title = 📋 تیکت‌ها:
bot-tickets-none = هنوز تیکتی ندارید.
bot-ticket-head = 🎫 <b>#{ $id } { $subject }</b> — { $status }
bot-ticket-status-open = در انتظار پاسخ
bot-ticket-status-answered = پاسخ داده شده
bot-ticket-status-closed = بسته شده
bot-ticket-staff = پشتیبانی
bot-ticket-you = شما
bot-ticket-answered =
    💬 <b>پشتیبانی به تیکت #{ $id } پاسخ داد:</b>

    { $body }

## Staff
bot-staff-only = این بخش فقط مخصوص ادمین‌ها و پشتیبان‌هاست.
bot-admin-title = 🛠 <b>پنل مدیریت</b>
bot-stats =
    📊 <b>فروشگاه</b>
    مشتریان: { $customers } (جدید امروز: { $new })
    سرویس‌های فعال: { $active } (پایان تا ۳ روز آینده: { $expiring })
    فروش امروز: { $today }
    فروش این ماه: { $month }
    رسیدهای در انتظار بررسی: { $review } · تیکت‌های باز: { $tickets }
    نودهای آنلاین: { $online } از { $nodes }
bot-queue-title = 🧾 رسیدهای در انتظار بررسی: { $count }
bot-queue-empty = 🧾 هیچ رسیدی در انتظار بررسی نیست.
bot-nodes-title = 🖥 <b>نودها</b>
bot-nodes-none = هنوز نودی ثبت نشده است.
bot-nodes-seen = (آخرین اتصال { $secs } ثانیه پیش)
bot-staff-receipt =
    🧾 <b>رسید { $marker }</b> · سفارش #{ $order }
    مبلغ: <b>{ $amount }</b>
    کارت: { $card }
    مشتری: { $customer }
    بررسی: { $risk }
bot-risk-low = ریسک پایین
bot-risk-medium = ریسک متوسط
bot-risk-high = ریسک بالا
bot-risk-pending = هنوز بررسی نشده
bot-decided-approved = ✅ تأیید شد { $by }
bot-decided-rejected = ❌ رد شد: { $reason }
bot-decided-other = وضعیت: { $status }
bot-reason-amount = مبلغ واریزی با مبلغ سفارش مطابقت ندارد
bot-reason-not-received = مبلغ به حساب واریز نشده است
bot-reason-unreadable = رسید خوانا نیست
bot-reason-duplicate = این رسید قبلاً استفاده شده است
bot-reason-other = ✍️ دلیل دیگر
bot-staff-approved = پرداخت #{ $id } تأیید شد
bot-staff-rejected = پرداخت #{ $id } رد شد
bot-staff-reject-prompt = ✍️ دلیل رد { $marker } را در ریپلای به همین پیام بنویسید.
bot-staff-order-paid = 💰 سفارش #{ $order } پرداخت شد: { $amount } از طریق { $method } — { $customer }
bot-staff-ticket =
    🎫 <b>{ $marker }</b> از طرف { $customer }
    <b>{ $subject }</b>

    { $body }

    برای پاسخ دادن، روی همین پیام ریپلای کنید.
bot-staff-answer-prompt = ✍️ پاسخ خود به { $marker } را در ریپلای به همین پیام بنویسید.
bot-staff-answer-sent = ✅ پاسخ به تیکت #{ $id } ارسال شد.
bot-staff-user-ask = 🔎 شناسهٔ کاربر، آیدی عددی تلگرام، @یوزرنیم یا بخشی از نام را بفرستید:
bot-staff-user-none = کاربری پیدا نشد.
bot-staff-users-found = نتایج جستجو:
bot-staff-user =
    👤 <b>#{ $id } { $name }</b> ({ $username }، تلگرام { $tg })
    وضعیت: { $status }
    کیف پول: { $wallet } · امتیاز: { $points } · سفارش‌های پرداخت‌شده: { $orders }
bot-staff-ban-usage = نحوهٔ استفاده: /ban USER_ID یا /unban USER_ID
bot-staff-banned = کاربر مسدود شد
bot-staff-unbanned = کاربر از مسدودیت خارج شد
bot-broadcast-choose = 📣 پیام برای چه کسانی ارسال شود؟
bot-seg-all = همهٔ کاربران
bot-seg-active = دارای سرویس فعال
bot-seg-expired = فقط سرویس‌های منقضی‌شده
bot-seg-new = بدون خرید
bot-broadcast-ask = ✍️ متن پیام را بفرستید:
bot-broadcast-confirm = 📣 این پیام برای { $count } کاربر ارسال شود؟
bot-broadcast-progress =
    📣 <b>پیام همگانی #{ $id }</b> — { $status }
    ارسال‌شده: { $sent } از { $total } · ناموفق: { $failed } · ربات را مسدود کرده‌اند: { $blocked } · در صف: { $pending }
bot-broadcast-sending = در حال ارسال
bot-broadcast-done = انجام شد
bot-broadcast-cancelled = لغو شد
bot-broadcast-draft = پیش‌نویس

## Errors a customer may see
bot-error-generic = متأسفیم، انجام نشد ({ $code }).
bot-error-internal = متأسفیم، مشکلی از سمت ما پیش آمد. لطفاً یک دقیقه دیگر دوباره امتحان کنید.
bot-error-invalid = پذیرفته نشد: { $reason }
bot-error-insufficient_funds = موجودی کیف پول شما کافی نیست. کیف پول را شارژ کنید یا روش پرداخت دیگری را انتخاب کنید.
bot-error-discount_invalid = این کد تخفیف برای این خرید قابل استفاده نیست.
bot-error-discount_not_found = چنین کد تخفیفی وجود ندارد.
bot-error-payment_method_unavailable = این روش پرداخت برای این خرید در دسترس نیست.
bot-error-no_card_available = در حال حاضر پرداخت کارت به کارت امکان‌پذیر نیست. لطفاً روش دیگری را انتخاب کنید یا بعداً امتحان کنید.
bot-error-duplicate_receipt = این رسید قبلاً ارسال شده است.
bot-error-invalid_payment_transition = وضعیت این پرداخت قبلاً مشخص شده یا مهلت آن تمام شده است.
bot-error-payment_already_approved = این پرداخت قبلاً تأیید شده است.
bot-error-payment_not_found = این پرداخت پیدا نشد.
bot-error-order_not_found = این سفارش پیدا نشد.
bot-error-subscription_not_found = این سرویس پیدا نشد.
bot-error-plan_not_found = این پلن دیگر موجود نیست.
bot-error-plan_unavailable = این پلن دیگر موجود نیست.
bot-error-permission_denied = اجازهٔ انجام این کار را ندارید.
bot-error-account_disabled = این حساب کاربری مسدود است.
bot-error-rate_limited = تعداد تلاش‌ها بیش از حد است. لطفاً کمی صبر کنید.
bot-error-gateway_failed = درگاه پرداخت پاسخ نداد. لطفاً یک دقیقه دیگر دوباره امتحان کنید.
bot-error-unavailable = سیستم در حال حاضر شلوغ است. لطفاً یک دقیقه دیگر دوباره امتحان کنید.
bot-error-trial_used = شما قبلاً از تست رایگان استفاده کرده‌اید.
bot-error-trial_disabled = در حال حاضر تست رایگان فعال نیست.
bot-error-too_many_tickets = شما در حال حاضر تیکت باز دارید؛ لطفاً منتظر پاسخ بمانید.
bot-error-ticket_closed = این تیکت بسته شده است. لطفاً یک تیکت جدید باز کنید.
bot-error-invalid_subscription_transition = این کار در وضعیت فعلی سرویس امکان‌پذیر نیست.
