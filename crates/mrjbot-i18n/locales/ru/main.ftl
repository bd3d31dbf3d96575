# Сообщения MRJBot на русском. Ключи и пояснения — в en/main.ftl.
# Числа форматирует код; даты и объёмы приходят готовым текстом.

## Counts

days-count =
    { $days ->
        [one] { $days } день
        [few] { $days } дня
       *[many] { $days } дней
    }

## Subscription page and link remarks

sub-page-title = Ваша подписка

sub-status-active = Активна
sub-status-on_hold = Начнётся при первом подключении
sub-status-limited = Трафик исчерпан
sub-status-expired = Истекла
sub-status-disabled = Отключена
sub-status-temporary = Временный доступ, пока проверяется оплата

sub-expires = Действует до { $date }
sub-never-expires = Бессрочно
sub-days-left =
    { $days ->
        [one] Остался { $days } день
        [few] Осталось { $days } дня
       *[many] Осталось { $days } дней
    }

sub-data-used = Использовано { $used } из { $total }
sub-data-unlimited = Безлимитный трафик
sub-data-left = Осталось { $left }

sub-link = Ссылка на подписку
sub-copy = Копировать
sub-copied = Скопировано
sub-qr = Отсканируйте в VPN-приложении
sub-import = Добавить в приложение
sub-apps = Приложения
sub-apps-help = Установите приложение, затем нажмите его кнопку или отсканируйте QR-код.
sub-configs = Отдельные конфигурации
sub-support = Поддержка
sub-renew = Продлить в боте

sub-inactive-remark = { $status } — продлите в { $bot }

sub-updated = Обновлено
sub-platform-android = Android
sub-platform-ios = iOS
sub-platform-windows = Windows
sub-platform-macos = macOS
sub-platform-linux = Linux
sub-no-configs = Серверы пока не назначены

## Payment notices (sent to the customer)
pay-approved = ✅ Оплата { $amount } по заказу #{ $order } подтверждена. Услуга скоро будет готова.
pay-surplus-to-wallet = 💰 Мы получили { $amount } за уже оплаченный заказ #{ $order } и зачислили их на ваш кошелёк.
pay-rejected = ❌ Оплата заказа #{ $order } не принята: { $reason }
refund-to-wallet = 💰 { $amount } возвращены на ваш кошелёк. Причина: { $reason }
refund-to-payer = 💸 { $amount } возвращены на ваш способ оплаты. Причина: { $reason }
order-delivered = 🎉 Заказ #{ $order } готов. Откройте «Мои подписки», чтобы получить ссылку.
order-failed-refunded = ⚠️ Не удалось выполнить заказ #{ $order }, поэтому { $amount } возвращены на ваш кошелёк. Приносим извинения.

## Referrals (sent to the referrer)
referral-rewarded = 🎁 Приглашённый вами пользователь совершил первую покупку. Начислено баллов: { $points }.
