# MRJBot messages in English, the fallback for every other language.
# Numbers passed as arguments are formatted by the code (grouping, digits); dates and byte
# sizes arrive already formatted as text.

## Counts

# A number of days on its own ("12 days").
days-count =
    { $days ->
        [one] { $days } day
       *[other] { $days } days
    }

## Subscription page and link remarks

sub-page-title = Your subscription

# Status labels; also used as the first part of sub-inactive-remark.
sub-status-active = Active
sub-status-on_hold = Starts on first connection
sub-status-limited = Data used up
sub-status-expired = Expired
sub-status-disabled = Disabled
sub-status-temporary = Temporary access while your payment is reviewed

# $date: a date formatted for the language ("21 Nov 2026").
sub-expires = Expires on { $date }
sub-never-expires = Never expires
sub-days-left =
    { $days ->
        [one] { $days } day left
       *[other] { $days } days left
    }

# $used, $total, $left: byte sizes formatted for the language ("12.5 GB").
sub-data-used = { $used } of { $total } used
sub-data-unlimited = Unlimited data
sub-data-left = { $left } left

sub-link = Subscription link
sub-copy = Copy
sub-copied = Copied
sub-qr = Scan with your VPN app
sub-import = Add to app
sub-apps = Apps
sub-apps-help = Install an app, then tap its button or scan the QR code.
sub-configs = Individual configs
sub-support = Support
sub-renew = Renew in the bot

# The remark of the single placeholder link served to an expired, limited or disabled
# subscription. $status: one of the sub-status-* labels; $bot: the bot's @username.
sub-inactive-remark = { $status } — renew in { $bot }

sub-updated = Updated
sub-platform-android = Android
sub-platform-ios = iOS
sub-platform-windows = Windows
sub-platform-macos = macOS
sub-platform-linux = Linux
sub-no-configs = No servers are assigned yet

## Payment notices (sent to the customer)
pay-approved = ✅ Your payment of { $amount } for order #{ $order } is confirmed. Your service is on its way.
pay-surplus-to-wallet = 💰 We received { $amount } for order #{ $order }, which was already paid, so it went to your wallet.
pay-rejected = ❌ Your payment for order #{ $order } was not accepted: { $reason }
refund-to-wallet = 💰 { $amount } was refunded to your wallet. Reason: { $reason }
refund-to-payer = 💸 { $amount } was refunded to your payment method. Reason: { $reason }
order-delivered = 🎉 Order #{ $order } is ready. Open "My services" to get your link.
order-failed-refunded = ⚠️ We could not deliver order #{ $order }, so { $amount } went back to your wallet. Sorry for the trouble.

## Referrals (sent to the referrer)
# $points: the points just earned.
referral-rewarded = 🎁 Someone you invited made their first purchase: you earned { $points } points.
