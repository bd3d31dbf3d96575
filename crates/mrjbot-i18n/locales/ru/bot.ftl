# Telegram-бот на русском. Ключи и пояснения — в en/bot.ftl.
# Текст — это HTML Telegram: теги <b>, <i>, <code> должны быть сбалансированы, а & < > пишутся
# только как сущности. Суммы, даты и объёмы приходят уже отформатированными.

## Commands (the bot's menu button)
bot-cmd-start = Главное меню
bot-cmd-buy = Купить VPN
bot-cmd-services = Мои подписки
bot-cmd-wallet = Кошелёк
bot-cmd-support = Поддержка
bot-cmd-help = Помощь
bot-cmd-faq = Вопросы и ответы
bot-cmd-language = Язык

## General
bot-amount-toman =
    { $amount ->
        [one] { $amount } туман
        [few] { $amount } тумана
        [many] { $amount } туманов
       *[other] { $amount } тумана
    }
bot-unlimited = безлимит
bot-not-started = отсчёт начнётся с первого подключения
bot-devices =
    { $n ->
        [one] { $n } устройство
        [few] { $n } устройства
        [many] { $n } устройств
       *[other] { $n } устройства
    }
bot-devices-unlimited = любое число устройств
bot-welcome-choose-language = 👋 Добро пожаловать! Выберите язык:
bot-choose-language = 🌐 Выберите язык:
bot-language-set = Язык сохранён
bot-menu = 👋 Здравствуйте, { $name }! Что вас интересует?
bot-use-buttons = Пожалуйста, воспользуйтесь кнопками ниже.
bot-not-understood = Извините, я не понял ваше сообщение.
bot-unknown-command = Такой команды нет. Вот главное меню:
bot-cancelled = Отменено.
bot-stale-button = Эта кнопка устарела. Вот актуальная информация.
bot-slow-down = ⏳ Вы отправляете сообщения слишком часто. Подождите минуту и попробуйте снова.
bot-banned = ⛔ Ваш аккаунт заблокирован. Если вы считаете, что это ошибка, напишите в поддержку.
bot-join-required = 📢 Чтобы пользоваться ботом, сначала подпишитесь на наш канал { $channel }, а затем нажмите «Проверить подписку».
bot-thanks-joined = Спасибо за подписку!
bot-not-joined-yet = Вы ещё не подписались на канал.

## Buttons
bot-btn-buy = 🛒 Купить
bot-btn-services = 📦 Мои подписки
bot-btn-trial = 🎁 Пробный период
bot-btn-wallet = 👛 Кошелёк
bot-btn-referral = 👥 Пригласить друзей
bot-btn-support = 💬 Поддержка
bot-btn-help = ❓ Помощь
bot-btn-language = 🌐 Язык
bot-btn-admin = 🛠 Админ-панель
bot-btn-menu = 🏠 Меню
bot-btn-back = ◀️ Назад
bot-btn-join-channel = 📢 Подписаться на канал
bot-btn-joined = ✅ Проверить подписку
bot-btn-discount = 🏷 Промокод
bot-btn-cancel-order = ✖️ Отменить заказ
bot-btn-pay = 💳 Оплатить { $amount }
bot-btn-link = 🔗 Ссылка и QR
bot-btn-renew = 🔄 Продлить
bot-btn-traffic = ➕ Докупить трафик
bot-btn-rotate = ♻️ Новая ссылка
bot-btn-move = 🌍 Сменить локацию
bot-btn-yes-rotate = ✅ Да, новая ссылка
bot-btn-no = ✖️ Нет
bot-btn-apps = 📲 Как подключиться
bot-btn-trial-take = 🎁 Получить пробный период
bot-btn-topup = ➕ Пополнить
bot-btn-redeem = 🎯 Обменять баллы на баланс
bot-btn-ticket-new = ✍️ Новое сообщение
bot-btn-tickets = 📋 Мои тикеты
bot-btn-reply = ✍️ Ответить
bot-btn-close-ticket = ✅ Закрыть
bot-btn-approve = ✅ Одобрить
bot-btn-reject = ❌ Отклонить
bot-btn-answer = ✍️ Ответить
bot-btn-stats = 📊 Статистика
bot-btn-queue = 🧾 Чеки
bot-btn-nodes = 🖥 Ноды
bot-btn-broadcast = 📣 Рассылка
bot-btn-send = ✅ Отправить
bot-btn-cancel = ✖️ Отмена
bot-btn-refresh = 🔄 Обновить
bot-btn-ban = ⛔ Заблокировать
bot-btn-unban = ✅ Разблокировать

## Catalog and checkout
bot-catalog-empty = Сейчас нет доступных тарифов. Загляните чуть позже.
bot-choose-location = 🌍 Выберите локацию:
bot-choose-ip-type = 📍 { $location }: выберите тип IP:
bot-ip-explain = <b>Статический IP</b> — адрес сервера не меняется (удобно для банков и игр). <b>Динамический IP</b> — вас автоматически переключает на исправный сервер.
bot-ip-constant = 📌 Статический IP
bot-ip-dynamic = 🔀 Динамический IP
bot-choose-duration = ⏳ Выберите срок:
bot-choose-plan = 📦 Выберите тариф (трафик · устройства · цена):
bot-plan-card =
    <b>{ $name }</b>
    📍 { $location } · { $iptype }
    ⏳ { $days }
    📶 { $data }
    📱 { $devices }
bot-plan-unavailable = Этот тариф больше не продаётся.
bot-choose-method = 💳 Выберите способ оплаты:
bot-renew-choose-method = 🔄 Продление по тому же тарифу. Выберите способ оплаты:
bot-traffic-choose = ➕ Сколько трафика добавить?
bot-traffic-choose-method = ➕ Дополнительно { $data }. Выберите способ оплаты:
bot-topup-choose = ➕ На какую сумму пополнить кошелёк? Выберите сумму или введите её в туманах.
bot-topup-choose-method = ➕ Пополнение на { $amount }. Выберите способ оплаты:
bot-topup-bad-amount = Введите сумму от 10 000 до 100 000 000 туманов, только цифрами.
bot-no-methods = Сейчас для этого нет доступных способов оплаты. Пожалуйста, напишите в поддержку.
bot-discount-ask = 🏷 Введите промокод:
bot-discount-ok = ✅ Промокод принят: скидка { $off }.
bot-discount-applied = 🏷 Будет применён промокод <b>{ $code }</b>.
bot-discount-off = 🏷 Скидка: { $off }
bot-method-card = 💳 Перевод на карту
bot-method-wallet = 👛 Кошелёк
bot-method-zarinpal = 🟡 Заринпал
bot-method-yookassa = 🟢 ЮKassa
bot-method-stars = ⭐ Звёзды Telegram
bot-method-cryptopay = 💎 Криптовалюта
bot-card-instructions =
    🧾 <b>Заказ #{ $order }</b>

    Переведите ровно <b>{ $amount }</b> на карту:
    { $card }
    👤 { $owner } { $bank }

    Затем отправьте сюда фото чека. Оплатить нужно до { $deadline }.
bot-paid-from-wallet = ✅ С кошелька списано { $amount } в оплату заказа #{ $order }. Ваша подписка уже готовится.
bot-pay-online = 🧾 <b>Заказ #{ $order }</b>: { $amount }, способ оплаты — { $method }. Нажмите кнопку, чтобы оплатить; как только платёж подтвердится, мы сразу сообщим вам здесь.
bot-order-cancelled = Заказ отменён.

## Receipts
bot-receipt-received = 📨 Чек по платежу #{ $id } получен. Мы скоро его проверим и сообщим результат здесь.
bot-receipt-send-photo = Пожалуйста, отправьте чек в виде фото.
bot-receipt-too-big = Изображение слишком большое (максимум 10 МБ).
bot-receipt-download-failed = Не удалось загрузить изображение. Пожалуйста, отправьте его ещё раз.
bot-photo-unexpected = Фото здесь не ожидалось. Если это чек об оплате, сначала начните оплату.

## Delivery and services
bot-delivered = 🎉 Заказ #{ $order } готов!
bot-delivered-wallet = ✅ Заказ #{ $order } выполнен: кошелёк пополнен.
bot-link-title = 🔗 <b>Ваша ссылка подписки</b> — добавьте её в VPN-приложение:
bot-link-revoked = У этой подписки сейчас нет ссылки. Нажмите «Новая ссылка», чтобы получить её.
bot-sub-card =
    { $emoji } <b>Подписка #{ $id }</b> — { $status }
    📅 Окончание: { $expires } (осталось: { $left })
    📶 Трафик: { $used } / { $limit } (осталось: { $dataleft })
bot-sub-disabled-note = Эта подписка отключена. Подробности можно узнать в поддержке.
bot-services-title = 📦 Ваши подписки:
bot-no-services = У вас пока нет подписок.
bot-rotate-confirm = ♻️ Получить новую ссылку? Старая сразу перестанет работать, и новую нужно будет добавить на всех устройствах.
bot-rotated = Новая ссылка готова
bot-move-choose = 🌍 Выберите новую локацию:
bot-move-none = Других локаций сейчас нет.
bot-moved = ✅ Локация изменена. Обновите подписку в приложении.
bot-apps-intro = 📲 <b>Как подключиться</b>: установите приложение, скопируйте ссылку подписки и выберите в приложении «Импорт из буфера обмена» (или отсканируйте QR-код).
bot-remind-expiry = ⏰ Подписка #{ $id } закончится через { $days } ({ $date }). Продлите её сейчас, чтобы не остаться без VPN.
bot-remind-data = 📶 По подписке #{ $id } израсходовано { $percent }% трафика, осталось { $left }.
bot-remind-data-out = 📶 Трафик по подписке #{ $id } закончился. Докупите трафик или продлите подписку, чтобы продолжить.

## Trial, wallet, referrals
bot-trial-offer =
    🎁 Попробуйте наш VPN бесплатно: { $data } на { $hours ->
        [one] { $hours } час
        [few] { $hours } часа
        [many] { $hours } часов
       *[other] { $hours } часа
    }, один раз для каждого клиента.
bot-trial-used = Вы уже воспользовались пробным периодом. Выберите тариф, чтобы продолжить.
bot-trial-off = Сейчас пробный период недоступен.
bot-trial-given = 🎁 Пробный доступ готов. Приятного пользования!
bot-wallet = 👛 <b>Кошелёк</b>
    Баланс: { $balance }
bot-referral =
    👥 <b>Пригласите друзей</b>
    Поделитесь своей ссылкой — вы получите баллы, когда друг совершит первую покупку.

    { $link }

    Приглашено: { $invited } · Совершили покупку: { $rewarded }
    Баллы: <b>{ $points }</b> (1 балл = { $value })
bot-redeemed = 🎯 На ваш кошелёк зачислено { $amount }.

## Support
bot-help = ❓ <b>Помощь</b>
    Купить тариф можно в 🛒, ссылки на подписки — в 📦 «Мои подписки», а написать нам можно в любое время через 💬 «Поддержку».
bot-faq-title = <b>Частые вопросы:</b>
bot-support = 💬 <b>Поддержка</b>
    Напишите нам, и оператор ответит прямо здесь.
bot-ticket-ask = ✍️ Напишите ваше сообщение (одним сообщением; дополнить можно позже):
bot-ticket-opened = 📨 Тикет #{ $id } отправлен. Ответ придёт сюда.
bot-ticket-reply-ask = ✍️ Напишите ответ:
bot-ticket-closed = Тикет закрыт
bot-tickets-title = 📋 Тикеты:
bot-tickets-none = Тикетов пока нет.
bot-ticket-head = 🎫 <b>#{ $id } { $subject }</b> — { $status }
bot-ticket-status-open = ждёт ответа
bot-ticket-status-answered = есть ответ
bot-ticket-status-closed = закрыт
bot-ticket-staff = Поддержка
bot-ticket-you = Вы
bot-ticket-answered =
    💬 <b>Поддержка ответила на тикет #{ $id }:</b>

    { $body }

## Staff
bot-staff-only = Это доступно только сотрудникам.
bot-admin-title = 🛠 <b>Админ-панель</b>
bot-stats =
    📊 <b>Магазин</b>
    Клиенты: { $customers } (новых сегодня: { $new })
    Активные подписки: { $active } (истекают в ближайшие 3 дня: { $expiring })
    Выручка за сегодня: { $today }
    Выручка за месяц: { $month }
    Чеки на проверке: { $review } · Открытые тикеты: { $tickets }
    Ноды онлайн: { $online } из { $nodes }
bot-queue-title = 🧾 Чеки на проверке: { $count }
bot-queue-empty = 🧾 Нет чеков, ожидающих проверки.
bot-nodes-title = 🖥 <b>Ноды</b>
bot-nodes-none = Нод пока нет.
bot-nodes-seen = (на связи { $secs } с назад)
bot-staff-receipt =
    🧾 <b>Чек { $marker }</b> · заказ #{ $order }
    Сумма: <b>{ $amount }</b>
    Карта: { $card }
    Клиент: { $customer }
    Проверка: { $risk }
bot-risk-low = низкий риск
bot-risk-medium = средний риск
bot-risk-high = высокий риск
bot-risk-pending = ещё не проверен
bot-decided-approved = ✅ Одобрено: { $by }
bot-decided-rejected = ❌ Отклонено: { $reason }
bot-decided-other = Статус: { $status }
bot-reason-amount = Сумма не совпадает с суммой заказа
bot-reason-not-received = Деньги не поступили
bot-reason-unreadable = Чек невозможно прочитать
bot-reason-duplicate = Этот чек уже использовался
bot-reason-other = ✍️ Другая причина
bot-staff-approved = Платёж #{ $id } одобрен
bot-staff-rejected = Платёж #{ $id } отклонён
bot-staff-reject-prompt = ✍️ Ответьте на это сообщение, указав причину отклонения { $marker }.
bot-staff-order-paid = 💰 Заказ #{ $order } оплачен: { $amount }, { $method } — { $customer }
bot-staff-ticket =
    🎫 <b>{ $marker }</b> от { $customer }
    <b>{ $subject }</b>

    { $body }

    Чтобы ответить клиенту, ответьте на это сообщение.
bot-staff-answer-prompt = ✍️ Ответьте на это сообщение, чтобы ответить на { $marker }.
bot-staff-answer-sent = ✅ Ответ на тикет #{ $id } отправлен.
bot-staff-user-ask = 🔎 Отправьте ID пользователя, Telegram ID, @username или часть имени:
bot-staff-user-none = Никого не найдено.
bot-staff-users-found = Найдено:
bot-staff-user =
    👤 <b>#{ $id } { $name }</b> ({ $username }, Telegram { $tg })
    Статус: { $status }
    Кошелёк: { $wallet } · Баллы: { $points } · Оплаченных заказов: { $orders }
bot-staff-ban-usage = Использование: /ban USER_ID или /unban USER_ID
bot-staff-banned = Клиент заблокирован
bot-staff-unbanned = Клиент разблокирован
bot-broadcast-choose = 📣 Кому отправить сообщение?
bot-seg-all = Всем
bot-seg-active = С активной подпиской
bot-seg-expired = Только с истёкшей подпиской
bot-seg-new = Без покупок
bot-broadcast-ask = ✍️ Отправьте текст сообщения:
bot-broadcast-confirm =
    📣 Отправить это сообщение { $count ->
        [one] { $count } клиенту
       *[other] { $count } клиентам
    }?
bot-broadcast-progress =
    📣 <b>Рассылка #{ $id }</b> — { $status }
    Отправлено { $sent } из { $total } · ошибок { $failed } · заблокировали бота { $blocked } · в очереди { $pending }
bot-broadcast-sending = идёт отправка
bot-broadcast-done = завершена
bot-broadcast-cancelled = отменена
bot-broadcast-draft = черновик

## Errors a customer may see
bot-error-generic = Извините, не получилось ({ $code }).
bot-error-internal = Извините, у нас что-то пошло не так. Попробуйте ещё раз через минуту.
bot-error-invalid = Не принято: { $reason }
bot-error-insufficient_funds = На кошельке недостаточно средств. Пополните его или выберите другой способ оплаты.
bot-error-discount_invalid = Этот промокод здесь не действует.
bot-error-discount_not_found = Такого промокода нет.
bot-error-payment_method_unavailable = Этот способ оплаты недоступен для этой покупки.
bot-error-no_card_available = Перевод на карту сейчас недоступен. Выберите другой способ или попробуйте позже.
bot-error-duplicate_receipt = Этот чек уже был отправлен.
bot-error-invalid_payment_transition = По этому платежу уже принято решение, или срок его оплаты истёк.
bot-error-payment_already_approved = Этот платёж уже подтверждён.
bot-error-payment_not_found = Платёж не найден.
bot-error-order_not_found = Заказ не найден.
bot-error-subscription_not_found = Подписка не найдена.
bot-error-plan_not_found = Этот тариф больше не продаётся.
bot-error-plan_unavailable = Этот тариф больше не продаётся.
bot-error-permission_denied = У вас нет прав на это действие.
bot-error-account_disabled = Этот аккаунт заблокирован.
bot-error-rate_limited = Слишком много попыток. Подождите немного.
bot-error-gateway_failed = Платёжный сервис не ответил. Попробуйте ещё раз через минуту.
bot-error-unavailable = Сервис перегружен. Попробуйте ещё раз через минуту.
bot-error-trial_used = Вы уже воспользовались пробным периодом.
bot-error-trial_disabled = Сейчас пробный период недоступен.
bot-error-too_many_tickets = У вас уже есть открытые тикеты — пожалуйста, дождитесь ответа.
bot-error-ticket_closed = Этот тикет закрыт. Создайте новый.
bot-error-invalid_subscription_transition = В текущем состоянии подписки это действие недоступно.
