# %postun of the slurm-usage .rpm ($1 = 0 on erase, 1 on upgrade). The collected data in
# /var/lib/slurm-usage and the slurm-usage user are kept, also on erase: the archive is the
# only copy of accounting that slurmdbd has purged since.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    # An upgrade restarts a running daemon so that it runs the new binary;
    # a stopped one stays stopped.
    if [ "$1" -ge 1 ]; then
        systemctl try-restart slurm-usage.service >/dev/null 2>&1 || :
    fi
fi
if [ "$1" -eq 0 ]; then
    # The package lists files only; drop its directories when they are empty (a modified
    # config stays behind as config.toml.rpmsave, and keeps /etc/slurm-usage).
    rmdir /usr/share/doc/slurm-usage/docs /usr/share/doc/slurm-usage /etc/slurm-usage 2>/dev/null || :
fi
if [ "$1" -eq 0 ] && [ -d /var/lib/slurm-usage ]; then
    echo "slurm-usage: removed; the collected data in /var/lib/slurm-usage and the slurm-usage user are kept."
    echo "  To delete them too:  rm -rf /var/lib/slurm-usage; userdel slurm-usage; groupdel slurm-usage"
fi
exit 0
