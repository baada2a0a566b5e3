# %preun of the slurm-usage .rpm ($1 = 0 on erase, 1 on upgrade): on erase, stop and disable
# the service (the unit file goes away with the package).
if [ "$1" -eq 0 ] && command -v systemctl >/dev/null 2>&1; then
    if [ -d /run/systemd/system ]; then
        systemctl stop slurm-usage.service >/dev/null 2>&1 || :
    fi
    systemctl --no-reload disable slurm-usage.service >/dev/null 2>&1 || :
fi
exit 0
