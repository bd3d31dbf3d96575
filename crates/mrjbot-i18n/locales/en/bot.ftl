# The Telegram bot, in English. Text is Telegram HTML: keep <b>, <i>, <code> balanced and
# write & < > only as entities. Amounts, dates and sizes arrive formatted.

## Commands (the bot's menu button)
bot-cmd-start = Main menu
bot-cmd-buy = Buy a VPN plan
bot-cmd-services = My services
bot-cmd-wallet = Wallet
bot-cmd-support = Support
bot-cmd-help = Help
bot-cmd-faq = Questions and answers
bot-cmd-language = Language

## General
bot-amount-toman = { $amount } toman
bot-unlimited = unlimited
bot-not-started = starts on first connection
bot-devices = { $n ->
    [one] { $n } device
   *[other] { $n } devices
}
bot-devices-unlimited = any number of devices
bot-welcome-choose-language = 👋 Welcome! Choose your language:
bot-choose-language = 🌐 Choose your language:
bot-language-set = Language saved
bot-menu = 👋 Hello { $name }! What would you like to do?
bot-use-buttons = Please use the buttons below.
bot-not-understood = I did not understand that.
bot-unknown-command = I don't know that command. Here is the menu:
bot-cancelled = Cancelled.
bot-stale-button = This button is out of date. Here is what is current.
bot-slow-down = ⏳ You are sending too fast. Please wait a minute and try again.
bot-banned = ⛔ Your account is suspended. Contact support if you think this is a mistake.
bot-join-required = 📢 To use this bot, please join our channel { $channel } first, then press “I joined”.
bot-thanks-joined = Thank you for joining!
bot-not-joined-yet = You have not joined the channel yet.

## Buttons
bot-btn-buy = 🛒 Buy
bot-btn-services = 📦 My services
bot-btn-trial = 🎁 Free trial
bot-btn-wallet = 👛 Wallet
bot-btn-referral = 👥 Invite friends
bot-btn-support = 💬 Support
bot-btn-help = ❓ Help
bot-btn-language = 🌐 Language
bot-btn-admin = 🛠 Admin panel
bot-btn-menu = 🏠 Menu
bot-btn-back = ◀️ Back
bot-btn-join-channel = 📢 Join the channel
bot-btn-joined = ✅ I joined
bot-btn-discount = 🏷 Discount code
bot-btn-cancel-order = ✖️ Cancel order
bot-btn-pay = 💳 Pay { $amount }
bot-btn-link = 🔗 Link & QR
bot-btn-renew = 🔄 Renew
bot-btn-traffic = ➕ Extra traffic
bot-btn-rotate = ♻️ New link
bot-btn-move = 🌍 Change location
bot-btn-yes-rotate = ✅ Yes, new link
bot-btn-no = ✖️ No
bot-btn-apps = 📲 How to connect
bot-btn-trial-take = 🎁 Get my free trial
bot-btn-topup = ➕ Top up
bot-btn-redeem = 🎯 Turn points into credit
bot-btn-ticket-new = ✍️ New message
bot-btn-tickets = 📋 My tickets
bot-btn-reply = ✍️ Reply
bot-btn-close-ticket = ✅ Close
bot-btn-approve = ✅ Approve
bot-btn-reject = ❌ Reject
bot-btn-answer = ✍️ Answer
bot-btn-stats = 📊 Stats
bot-btn-queue = 🧾 Receipts
bot-btn-nodes = 🖥 Nodes
bot-btn-broadcast = 📣 Broadcast
bot-btn-send = ✅ Send
bot-btn-cancel = ✖️ Cancel
bot-btn-refresh = 🔄 Refresh
bot-btn-ban = ⛔ Ban
bot-btn-unban = ✅ Unban

## Catalog and checkout
bot-catalog-empty = There is nothing for sale right now. Please check back soon.
bot-choose-location = 🌍 Choose a location:
bot-choose-ip-type = 📍 { $location }: choose the IP type:
bot-ip-explain = <b>Constant IP</b> keeps the same server address (good for banking and games). <b>Dynamic IP</b> moves you to a healthy server automatically.
bot-ip-constant = 📌 Constant IP
bot-ip-dynamic = 🔀 Dynamic IP
bot-choose-duration = ⏳ Choose a duration:
bot-choose-plan = 📦 Choose a plan (data · devices · price):
bot-plan-card =
    <b>{ $name }</b>
    📍 { $location } · { $iptype }
    ⏳ { $days }
    📶 { $data }
    📱 { $devices }
bot-plan-unavailable = This plan is no longer for sale.
bot-choose-method = 💳 How would you like to pay?
bot-renew-choose-method = 🔄 Renew with the same plan. How would you like to pay?
bot-traffic-choose = ➕ How much extra traffic?
bot-traffic-choose-method = ➕ { $data } extra. How would you like to pay?
bot-topup-choose = ➕ How much would you like to add? Choose an amount or type it in toman.
bot-topup-choose-method = ➕ Top up { $amount }. How would you like to pay?
bot-topup-bad-amount = Please type an amount between 10,000 and 100,000,000 toman, digits only.
bot-no-methods = No payment method is available for this right now. Please contact support.
bot-discount-ask = 🏷 Type your discount code:
bot-discount-ok = ✅ Code accepted: { $off } off.
bot-discount-applied = 🏷 Discount code <b>{ $code }</b> will be applied.
bot-discount-off = 🏷 Discount: { $off }
bot-method-card = 💳 Card to card
bot-method-wallet = 👛 Wallet
bot-method-zarinpal = 🟡 Zarinpal
bot-method-yookassa = 🟢 YooKassa
bot-method-stars = ⭐ Telegram Stars
bot-method-cryptopay = 💎 Crypto
bot-card-instructions =
    🧾 <b>Order #{ $order }</b>

    Transfer exactly <b>{ $amount }</b> to this card:
    { $card }
    👤 { $owner } { $bank }

    Then send a photo of the receipt here. Please transfer before { $deadline }.
bot-paid-from-wallet = ✅ Paid { $amount } from your wallet for order #{ $order }. Your service is being prepared.
bot-pay-online = 🧾 <b>Order #{ $order }</b>: { $amount } by { $method }. Press the button to pay; you will get a message here as soon as the payment is confirmed.
bot-order-cancelled = The order was cancelled.

## Receipts
bot-receipt-received = 📨 Receipt for payment #{ $id } received. We will check it shortly and let you know here.
bot-receipt-send-photo = Please send the receipt as a photo.
bot-receipt-too-big = That picture is too large (10 MB at most).
bot-receipt-download-failed = I could not download that picture. Please send it again.
bot-photo-unexpected = I was not expecting a picture. If it is a payment receipt, start the payment first.

## Delivery and services
bot-delivered = 🎉 Order #{ $order } is ready!
bot-delivered-wallet = ✅ Order #{ $order } is done: your wallet was credited.
bot-link-title = 🔗 <b>Your subscription link</b> — add it to your VPN app:
bot-link-revoked = This subscription has no link now. Press “New link” to get one.
bot-sub-card =
    { $emoji } <b>Service #{ $id }</b> — { $status }
    📅 Expires: { $expires } ({ $left } left)
    📶 Used { $used } of { $limit } ({ $dataleft } left)
bot-sub-disabled-note = This service is disabled. Contact support for details.
bot-services-title = 📦 Your services:
bot-no-services = You have no services yet.
bot-rotate-confirm = ♻️ Get a new link? The old link stops working at once and every device must import the new one.
bot-rotated = New link issued
bot-move-choose = 🌍 Choose a new location:
bot-move-none = No other location is available right now.
bot-moved = ✅ Location changed. Refresh the subscription in your app.
bot-apps-intro = 📲 <b>How to connect</b>: install an app, copy your subscription link, and in the app choose “Import from clipboard” (or scan the QR code).
bot-remind-expiry = ⏰ Service #{ $id } ends in { $days } ({ $date }). Renew now to stay connected.
bot-remind-data = 📶 Service #{ $id } has used { $percent }% of its data; { $left } left.
bot-remind-data-out = 📶 Service #{ $id } has used all of its data. Add traffic or renew to continue.

## Trial, wallet, referrals
bot-trial-offer = 🎁 Try our service free: { $data } for { $hours } hours, once per customer.
bot-trial-used = You have already used your free trial. Choose a plan to continue.
bot-trial-off = There is no free trial at the moment.
bot-trial-given = 🎁 Your free trial is ready. Enjoy!
bot-wallet = 👛 <b>Wallet</b>
    Balance: { $balance }
bot-referral =
    👥 <b>Invite friends</b>
    Share your link; you earn points when a friend makes their first purchase.

    { $link }

    Invited: { $invited } · Purchased: { $rewarded }
    Points: <b>{ $points }</b> (each point is worth { $value })
bot-redeemed = 🎯 { $amount } was added to your wallet.

## Support
bot-help = ❓ <b>Help</b>
    Buy a plan with 🛒, find your links in 📦 My services, and write to us with 💬 Support any time.
bot-faq-title = <b>Frequently asked questions:</b>
bot-support = 💬 <b>Support</b>
    Write to us and an agent will answer here.
bot-ticket-ask = ✍️ Write your message (one message; you can add more later):
bot-ticket-opened = 📨 Ticket #{ $id } was sent. We will answer here.
bot-ticket-reply-ask = ✍️ Write your reply:
bot-ticket-closed = Ticket closed
bot-tickets-title = 📋 Tickets:
bot-tickets-none = No tickets yet.
bot-ticket-head = 🎫 <b>#{ $id } { $subject }</b> — { $status }
bot-ticket-status-open = waiting for an answer
bot-ticket-status-answered = answered
bot-ticket-status-closed = closed
bot-ticket-staff = Support
bot-ticket-you = You
bot-ticket-answered =
    💬 <b>Support answered ticket #{ $id }:</b>

    { $body }

## Staff
bot-staff-only = This is for staff only.
bot-admin-title = 🛠 <b>Admin panel</b>
bot-stats =
    📊 <b>Shop</b>
    Customers: { $customers } (new today: { $new })
    Active services: { $active } (ending in 3 days: { $expiring })
    Revenue today: { $today }
    Revenue this month: { $month }
    Receipts to review: { $review } · Open tickets: { $tickets }
    Nodes online: { $online } of { $nodes }
bot-queue-title = 🧾 Receipts waiting for review: { $count }
bot-queue-empty = 🧾 No receipt is waiting for review.
bot-nodes-title = 🖥 <b>Nodes</b>
bot-nodes-none = No nodes yet.
bot-nodes-seen = (seen { $secs } s ago)
bot-staff-receipt =
    🧾 <b>Receipt { $marker }</b> · order #{ $order }
    Amount: <b>{ $amount }</b>
    Card: { $card }
    Customer: { $customer }
    Check: { $risk }
bot-risk-low = low risk
bot-risk-medium = medium risk
bot-risk-high = high risk
bot-risk-pending = not analysed yet
bot-decided-approved = ✅ Approved { $by }
bot-decided-rejected = ❌ Rejected: { $reason }
bot-decided-other = Status: { $status }
bot-reason-amount = The amount does not match the order
bot-reason-not-received = The money has not arrived
bot-reason-unreadable = The receipt cannot be read
bot-reason-duplicate = This receipt was used before
bot-reason-other = ✍️ Other reason
bot-staff-approved = Payment #{ $id } approved
bot-staff-rejected = Payment #{ $id } rejected
bot-staff-reject-prompt = ✍️ Reply to this message with the reason for rejecting { $marker }.
bot-staff-order-paid = 💰 Order #{ $order } paid: { $amount } by { $method } — { $customer }
bot-staff-ticket =
    🎫 <b>{ $marker }</b> from { $customer }
    <b>{ $subject }</b>

    { $body }

    Reply to this message to answer.
bot-staff-answer-prompt = ✍️ Reply to this message with your answer to { $marker }.
bot-staff-answer-sent = ✅ Answer sent to ticket #{ $id }.
bot-staff-user-ask = 🔎 Send a user id, Telegram id, @username or part of a name:
bot-staff-user-none = Nobody found.
bot-staff-users-found = Found:
bot-staff-user =
    👤 <b>#{ $id } { $name }</b> ({ $username }, Telegram { $tg })
    Status: { $status }
    Wallet: { $wallet } · Points: { $points } · Paid orders: { $orders }
bot-staff-ban-usage = Usage: /ban USER_ID or /unban USER_ID
bot-staff-banned = Customer banned
bot-staff-unbanned = Customer unbanned
bot-broadcast-choose = 📣 Who should get the message?
bot-seg-all = Everyone
bot-seg-active = With an active service
bot-seg-expired = Expired only
bot-seg-new = Never bought
bot-broadcast-ask = ✍️ Send the message text:
bot-broadcast-confirm = 📣 Send this to { $count } customers?
bot-broadcast-progress =
    📣 <b>Broadcast #{ $id }</b> — { $status }
    Sent { $sent } of { $total } · failed { $failed } · blocked { $blocked } · waiting { $pending }
bot-broadcast-sending = sending
bot-broadcast-done = done
bot-broadcast-cancelled = cancelled
bot-broadcast-draft = draft

## Errors a customer may see
bot-error-generic = Sorry, that did not work ({ $code }).
bot-error-internal = Sorry, something went wrong on our side. Please try again in a minute.
bot-error-invalid = That was not accepted: { $reason }
bot-error-insufficient_funds = Your wallet balance is not enough. Top it up or choose another payment method.
bot-error-discount_invalid = This discount code cannot be used here.
bot-error-discount_not_found = There is no such discount code.
bot-error-payment_method_unavailable = This payment method is not available for this purchase.
bot-error-no_card_available = Card-to-card payment is not available right now. Please choose another method or try later.
bot-error-duplicate_receipt = This receipt was already sent.
bot-error-invalid_payment_transition = This payment was already decided or has expired.
bot-error-payment_already_approved = This payment was already approved.
bot-error-payment_not_found = That payment was not found.
bot-error-order_not_found = That order was not found.
bot-error-subscription_not_found = That service was not found.
bot-error-plan_not_found = That plan is no longer for sale.
bot-error-plan_unavailable = That plan is no longer for sale.
bot-error-permission_denied = You are not allowed to do that.
bot-error-account_disabled = This account is suspended.
bot-error-rate_limited = Too many attempts. Please wait a little.
bot-error-gateway_failed = The payment service did not answer. Please try again in a minute.
bot-error-unavailable = The service is busy. Please try again in a minute.
bot-error-trial_used = You have already used your free trial.
bot-error-trial_disabled = There is no free trial at the moment.
bot-error-too_many_tickets = You already have open tickets; please wait for an answer.
bot-error-ticket_closed = This ticket is closed. Open a new one.
bot-error-invalid_subscription_transition = This service cannot do that in its current state.
