import EmailService

await emailServiceMain()
