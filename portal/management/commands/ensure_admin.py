"""Create the first administrator, once.

`make run` calls this after `migrate`, so a fresh clone has someone who can sign in. It does
nothing when any superuser exists, so it is safe to run on every start. The account is
DJANGO_SUPERUSER_USERNAME / DJANGO_SUPERUSER_PASSWORD (the variables `createsuperuser
--noinput` reads) when set; otherwise `admin` with a generated password, printed once here
and stored nowhere else.
"""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal import services


class Command(BaseCommand):
    help = "Create the first superuser if there is none (from DJANGO_SUPERUSER_* or a generated password)."

    def handle(self, *args, **options):
        User = get_user_model()
        with transaction.atomic():
            if User.objects.filter(is_superuser=True).exists():
                self.stdout.write("A superuser exists already; nothing to do.")
                return
            username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
            password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
            email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
            if User.objects.filter(**{User.USERNAME_FIELD: username}).exists():
                # Promoting an existing account silently would hand it the keys; say so instead.
                raise CommandError(
                    f"User {username!r} exists but is not a superuser. Promote it in the admin, "
                    "or set DJANGO_SUPERUSER_USERNAME to another name."
                )
            generated = not password
            if generated:
                password = secrets.token_urlsafe(16)
            user = User.objects.create_superuser(username=username, email=email, password=password)
            # By no one: the command runs before anyone can sign in.
            services.audit_user(None, "user.created", user, after=services.user_snapshot(user))

        if generated:
            self.stdout.write(
                self.style.SUCCESS(f"Created superuser {username!r} with password: {password}\n")
                + "This password is shown only once: sign in and change it, or keep it somewhere safe."
            )
        else:
            self.stdout.write(self.style.SUCCESS(f"Created superuser {username!r}."))
