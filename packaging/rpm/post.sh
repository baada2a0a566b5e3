# %post of the slurm-usage .rpm ($1 = 1 on install, 2 on upgrade): the data dir and systemd's
# view of the unit. Never starts or enables the service.
# The data dir: 0750, owned by the service user (the unit's StateDirectoryMode=0750 enforces
# the same at every start). Only the dir itself, never what is inside it.
mkdir -p /var/lib/slurm-usage
chown slurm-usage:slurm-usage /var/lib/slurm-usage
chmod 0750 /var/lib/slurm-usage
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ]; then
    echo "slurm-usage: installed. Edit /etc/slurm-usage/config.toml, check it with"
    echo "  slurm-usage config check /etc/slurm-usage/config.toml && slurm-usage test"
    echo "then start the collector: systemctl enable --now slurm-usage"
fi
exit 0
